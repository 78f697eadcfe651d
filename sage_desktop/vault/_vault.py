"""TokenVault: Sage grants in the OS keychain, chunked and generation-atomic.

Layout under the keychain service ``sage-desktop`` (keyring "usernames"):

``grant/<id>``
    the head: ``{"v": 1, "gen": G, "n": K, "sha256": "..."}``; small, and
    the only entry ever replaced in place. Where one entry holds kilobytes
    (Secret Service, macOS Keychain, KWallet) the record rides in the head
    itself (``"data"``, ``K`` = 0): a save is then two keychain calls.
``grant/<id>/g<G>/c<i>``
    chunk ``i`` of generation ``G`` of the JSON record; written once, before
    the head that names it, and deleted after a newer head replaced it.
``client/<client id>`` and ``client/<client id>/g<G>/c<i>``
    the same for an app registration's client secret.

Why chunks: Windows Credential Manager refuses a password over 2560 bytes
(``CRED_MAX_CREDENTIAL_BLOB_SIZE``), stored as UTF-16, and Sage's access
and refresh tokens are up to 2048 bytes each. Payloads are ASCII JSON
(``ensure_ascii``), so a chunk of 1200 characters is 2400 UTF-16 bytes.

Why generations: a save writes the new chunks first, then the head (one
atomic replace), then deletes the old chunks. A crash before the head
leaves the old generation whole; after it, the new one. Reads check the
head's SHA-256 over the joined chunks, so a torn mix is never returned.

Clean-up survives crashes too: the head lists the generation it replaced
("dirty"), and the next writer from another process checks that its chunks
are gone (one read) before writing.
Limitation: a writer killed before its head, followed by a save of a
*shorter* record, leaves the extra chunks of the killed write behind until
the grant is deleted; so does a ``delete`` killed half-way. Both need a
crash at a precise moment, and the tokens left are superseded ones.

Writers of one vault (in any process) are serialised by a file lock in the
platformdirs runtime directory; that makes ``expected_generation`` a true
compare-and-swap, which the refresh worker relies on: Sage rotates refresh
tokens, so a lost update is a lost sign-in. Readers take no lock: a head
read just before a writer deleted its chunks shows up as a missing chunk
and the read starts again from the head.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import filelock
import platformdirs
from keyring.backend import KeyringBackend

from sage_desktop.errors import KeychainCorrupt, KeychainTimeout, VaultConflict
from sage_desktop.tokens import TokenSet

from ._keychain import Keychain

log = logging.getLogger(__name__)

SERVICE = "sage-desktop"

#: Characters per chunk: 2400 bytes as UTF-16, under Windows' 2560.
CHUNK_CHARS = 1200

#: Backends whose entries hold a whole record (several KB) in one item.
_ROOMY_BACKENDS = frozenset(
    {
        "keyring.backends.SecretService",
        "keyring.backends.libsecret",
        "keyring.backends.macOS",
        "keyring.backends.kwallet",
    }
)

#: Unlocked read attempts before a read waits for writers to finish.
_UNLOCKED_READS = 3

#: Attempts under the writers' lock before the entry is called damaged.
_LOCKED_READS = 3

#: Chunks swept when their count is unknown (a record is ~4 chunks).
_MAX_SWEEP = 16

#: Waiting for the writers' lock may take this many ``timeout``s.
_LOCK_WAIT_FACTOR = 6

#: Pause before re-reading when the head did not move (GNOME glitch).
_READ_PAUSE = 0.05


class _Head(NamedTuple):
    generation: int
    chunks: int
    sha256: str
    #: (generation, chunks) whose chunks may remain: the one this head
    #: replaced, deleted after the head was written, until a writer checks.
    dirty: tuple[tuple[int, int], ...] = ()
    #: The whole record, when the backend holds it in one entry (chunks 0).
    data: str | None = None

    def dump(self) -> str:
        head: dict[str, Any] = {
            "v": 1,
            "gen": self.generation,
            "n": self.chunks,
            "sha256": self.sha256,
            "dirty": [list(d) for d in self.dirty],
        }
        if self.data is not None:
            head["data"] = self.data
        return json.dumps(head, separators=(",", ":"))


def _parse_head(raw: str) -> _Head | None:
    """The head, or None when the entry is not one (damaged)."""
    try:
        data = json.loads(raw)
        head = _Head(
            int(data["gen"]),
            int(data["n"]),
            str(data["sha256"]),
            tuple((int(g), int(n)) for g, n in data.get("dirty", ())),
            data.get("data"),
        )
    except (ValueError, TypeError, KeyError):
        return None
    inline = isinstance(head.data, str) and head.chunks == 0
    chunked = head.data is None and 0 < head.chunks < 1000
    if data.get("v") != 1 or head.generation < 1 or not (inline or chunked):
        return None
    return head


def holds_whole_records(backend: KeyringBackend) -> bool:
    """True when one entry of ``backend`` can hold a whole grant record.

    Windows Credential Manager holds 2560 bytes (UTF-16), less than one
    Sage token pair, so records are chunked there; so they are for any
    backend we do not know, to be safe. The Secret Service, macOS Keychain
    and KWallet hold far more, and one entry saves keychain round trips.
    """
    from keyring.backends import chainer

    from .memory import MemoryKeyring

    if isinstance(backend, chainer.ChainerBackend):
        members = list(backend.backends)
        return bool(members) and all(holds_whole_records(m) for m in members)
    if isinstance(backend, MemoryKeyring):
        return backend.max_bytes is None
    return type(backend).__module__ in _ROOMY_BACKENDS


def _digest(payload: str) -> str:
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


def _split(payload: str) -> list[str]:
    return [
        payload[i : i + CHUNK_CHARS] for i in range(0, len(payload), CHUNK_CHARS)
    ] or [""]


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"), sort_keys=True)


def default_lock_dir() -> Path:
    """Where writers' lock lives: the per-user runtime dir (tmpfs on Linux)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back
        # to a private directory under /tmp, which is what we want then.
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir(SERVICE))


class TokenVault:
    """Grants' tokens and client secrets in the OS keychain.

    Args:
        backend: a ``keyring`` backend; ``None`` asks ``keyring.get_keyring()``
            on first use. Backends that would store nothing or store in a
            plain file are refused (:class:`~sage_desktop.errors.NoKeychainBackend`).
        service: the keychain service name.
        timeout: seconds one public operation may take, retries and waiting
            for other writers included; then
            :class:`~sage_desktop.errors.KeychainTimeout`.
        lock_dir: where the writers' lock file lives (default: the
            platformdirs runtime directory).
    """

    def __init__(
        self,
        backend: KeyringBackend | None = None,
        service: str = SERVICE,
        timeout: float = 10.0,
        *,
        lock_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.timeout = timeout
        self._keychain = Keychain(backend, service)
        directory = Path(lock_dir) if lock_dir is not None else default_lock_dir()
        # Created once, here: threads sharing this vault share one lock.
        self._lock_path = directory / f"vault-{service}.lock"
        self._file_lock = filelock.FileLock(self._lock_path, mode=0o600)
        # Heads this vault wrote and cleaned up after: no sweep needed.
        self._cleaned: dict[str, _Head] = {}

    @property
    def keychain_calls(self) -> int:
        """Keychain round trips made so far, retries included."""
        return self._keychain.calls

    # --- grants ----------------------------------------------------------

    def load(self, grant_id: str) -> TokenSet | None:
        """The stored tokens of a grant, or None when there are none."""
        found = self._read(_grant(grant_id), self._deadline())
        if found is None:
            return None
        generation, payload = found
        try:
            tokens = TokenSet.from_record(json.loads(payload))
        except (ValueError, TypeError, KeyError) as exc:
            raise KeychainCorrupt() from exc
        return tokens.with_generation(generation)

    def save(
        self,
        grant_id: str,
        tokens: TokenSet,
        *,
        expected_generation: int | None = None,
    ) -> TokenSet:
        """Store ``tokens`` as the grant's next generation and return them so.

        With ``expected_generation`` (0: nothing stored yet) the save is a
        compare-and-swap: :class:`~sage_desktop.errors.VaultConflict` if the
        stored generation is another, and nothing is written.
        """
        generation = self._write(
            _grant(grant_id),
            lambda gen: _dump(tokens.with_generation(gen).to_record()),
            expected_generation,
            self._deadline(),
        )
        log.info("stored tokens of connection %s, generation %d", grant_id, generation)
        return tokens.with_generation(generation)

    def delete(self, grant_id: str) -> None:
        """Forget a grant: its head first, then every chunk."""
        self._erase(_grant(grant_id), self._deadline())
        log.info("deleted tokens of connection %s", grant_id)

    # --- app registration ------------------------------------------------

    def load_client_secret(self, client_id: str) -> str | None:
        """The app registration's client secret, or None."""
        found = self._read(_client(client_id), self._deadline())
        if found is None:
            return None
        try:
            return str(json.loads(found[1])["client_secret"])
        except (ValueError, TypeError, KeyError) as exc:
            raise KeychainCorrupt() from exc

    def save_client_secret(self, client_id: str, secret: str) -> None:
        """Store the client secret Sage's developer portal issued."""
        self._write(
            _client(client_id),
            lambda _gen: _dump({"client_secret": secret}),
            None,
            self._deadline(),
        )

    def delete_client_secret(self, client_id: str) -> None:
        """Forget the client secret of ``client_id``."""
        self._erase(_client(client_id), self._deadline())

    # --- the chunked store -----------------------------------------------

    def _deadline(self) -> float:
        return time.monotonic() + self.timeout

    def _read(self, key: str, deadline: float) -> tuple[int, str] | None:
        previous: _Head | None = None
        for attempt in range(_UNLOCKED_READS + _LOCKED_READS):
            if attempt < _UNLOCKED_READS:
                outcome = self._read_once(key, deadline)
            else:
                # Writers kept replacing the grant under us: read while
                # they wait, which always sees one whole generation.
                with self._writers_lock(deadline):
                    outcome = self._read_once(key, self._deadline())
            if not isinstance(outcome, _Head):
                return outcome
            if outcome == previous:
                # Same head, chunk missing or wrong: GNOME Keyring's
                # transient "does not exist"; give it a moment.
                time.sleep(_READ_PAUSE)
            log.debug("re-reading %s (generation %d)", key, outcome.generation)
            previous = outcome
        raise KeychainCorrupt()

    def _read_once(self, key: str, deadline: float) -> tuple[int, str] | _Head | None:
        """The generation and payload; the head when chunks did not match."""
        raw = self._keychain.get(key, deadline)
        if raw is None:
            return None
        head = _parse_head(raw)
        if head is None:
            raise KeychainCorrupt()
        if head.data is not None:
            if _digest(head.data) != head.sha256:
                raise KeychainCorrupt()
            return head.generation, head.data
        parts = []
        for index in range(head.chunks):
            part = self._keychain.get(_chunk(key, head.generation, index), deadline)
            if part is None:
                return head
            parts.append(part)
        payload = "".join(parts)
        if _digest(payload) != head.sha256:
            return head
        return head.generation, payload

    def _write(
        self,
        key: str,
        payload_for: Callable[[int], str],
        expected: int | None,
        deadline: float,
    ) -> int:
        with self._writers_lock(deadline):
            deadline = self._deadline()
            old = self._current_head(key, deadline)
            current = old.generation if old else 0
            if expected is not None and expected != current:
                raise VaultConflict(
                    f"Another process stored generation {current} of these "
                    f"tokens; this one expected {expected}."
                )

            if old is not None and self._cleaned.get(key) != old:
                # A writer may have been killed while deleting: finish
                # its clean-up (usually one delete of a missing entry).
                for dirty, count in old.dirty:
                    self._sweep(key, dirty, count, deadline)

            generation = current + 1
            payload = payload_for(generation)
            replaced = ((old.generation, old.chunks),) if old and old.chunks else ()
            if holds_whole_records(self._keychain.backend(deadline)):
                head = _Head(generation, 0, _digest(payload), replaced, payload)
            else:
                chunks = _split(payload)
                for index, part in enumerate(chunks):
                    self._keychain.set(_chunk(key, generation, index), part, deadline)
                head = _Head(generation, len(chunks), _digest(payload), replaced)
            self._keychain.set(key, head.dump(), deadline)

            if old is not None:
                # Last chunk first: a clean-up cut short leaves a run from
                # chunk 0, which the next writer's sweep finds.
                for index in reversed(range(old.chunks)):
                    chunk = _chunk(key, old.generation, index)
                    self._keychain.delete(chunk, deadline)
            self._cleaned[key] = head
        return generation

    def _erase(self, key: str, deadline: float) -> None:
        with self._writers_lock(deadline):
            deadline = self._deadline()
            old = self._current_head(key, deadline)
            self._keychain.delete(key, deadline)
            self._cleaned.pop(key, None)
            if old is None:
                return

            for index in reversed(range(old.chunks)):
                self._keychain.delete(_chunk(key, old.generation, index), deadline)
            # Chunks a killed writer may have left: of the next generation
            # (killed before its head) and of the one it replaced (killed
            # while cleaning up).
            self._sweep(key, old.generation + 1, _MAX_SWEEP, deadline)
            for dirty, count in old.dirty:
                self._sweep(key, dirty, count, deadline)

    def _sweep(self, key: str, generation: int, count: int, deadline: float) -> None:
        """Delete chunks 0..count-1 of ``generation`` if chunk 0 is there.

        Clean-ups delete the last chunk first, so one cut short leaves a
        run from chunk 0: one read tells whether anything is left.
        """
        if self._keychain.get(_chunk(key, generation, 0), deadline) is None:
            return
        log.info("removing chunks a killed writer left behind for %s", key)
        for index in reversed(range(count)):
            self._keychain.delete(_chunk(key, generation, index), deadline)

    def _current_head(self, key: str, deadline: float) -> _Head | None:
        raw = self._keychain.get(key, deadline)
        if raw is None:
            return None
        head = _parse_head(raw)
        if head is None:
            # Overwriting is the way out of a damaged head (sign in again).
            log.warning("replacing a damaged keychain entry for %s", key)
        return head

    @contextmanager
    def _writers_lock(self, deadline: float) -> Iterator[None]:
        # Refuse a missing or plain-file backend before touching the disk.
        self._keychain.backend(deadline)
        self._lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = self._file_lock
        # Waiting for other writers is bounded apart from the keychain
        # calls: each holder is itself bounded, but a dozen processes
        # saving at once can queue for longer than one call may take.
        wait = self.timeout * _LOCK_WAIT_FACTOR
        started = time.monotonic()
        # filelock counts re-entry per process, not per thread: threads of
        # one process must queue on a thread lock before the file lock.
        if not _thread_lock(self._lock_path).acquire(timeout=wait):
            raise KeychainTimeout("Another thread kept the keychain busy.")
        try:
            try:
                lock.acquire(timeout=max(0.0, wait - (time.monotonic() - started)))
            except filelock.Timeout as exc:
                raise KeychainTimeout(
                    "Another sage-desktop process kept the keychain busy."
                ) from exc
            try:
                yield
            finally:
                lock.release()
        finally:
            _thread_lock(self._lock_path).release()


_THREAD_LOCKS: dict[Path, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    with _THREAD_LOCKS_GUARD:
        return _THREAD_LOCKS.setdefault(path, threading.Lock())


def _grant(grant_id: str) -> str:
    if not grant_id or "/" in grant_id:
        raise ValueError("a grant id is a non-empty string without '/'")
    return f"grant/{grant_id}"


def _client(client_id: str) -> str:
    if not client_id:
        raise ValueError("a client id is a non-empty string")
    return f"client/{client_id}"


def _chunk(key: str, generation: int, index: int) -> str:
    return f"{key}/g{generation}/c{index}"
