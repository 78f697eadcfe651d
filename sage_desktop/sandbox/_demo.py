"""The sandbox's demo registration, users and businesses.

Everything here is deterministic (a seeded generator), so the same ids and
business names come back on every run and every machine: tests can name
them and screenshots stay stable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

PASSWORD = "sandbox"
SEED = 20240601

SOLE_TRADER = "sole.trader@sandbox.example"
ACCOUNTANT = "accountant@sandbox.example"
US_USER = "us.user@sandbox.example"
DEVELOPER = "developer@sandbox.example"

ACCOUNTANT_BUSINESSES = 2500
ACCOUNTANT_INACTIVE = 7

# Sage's regions as the authorize page's picker offers them.
REGIONS = {
    "GB": "United Kingdom",
    "IE": "Ireland",
    "CA": "Canada",
    "US": "United States",
}
CURRENCIES = {"GB": "GBP", "IE": "EUR", "CA": "CAD", "US": "USD"}
LOCALES = {"GB": "en-GB", "IE": "en-IE", "CA": "en-CA", "US": "en-US"}


@dataclass(frozen=True)
class DemoUser:
    """A Sage login of the sandbox (all share the password ``sandbox``)."""

    id: str
    email: str
    first_name: str
    last_name: str
    region: str
    description: str

    @property
    def displayed_as(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def locale(self) -> str:
        return LOCALES[self.region]


@dataclass(frozen=True)
class DemoRegistration:
    """The demo app registration and the demo logins.

    ``client_id`` has Sage's ``<uuid>/<uuid>`` form; the redirect URIs are
    the loopback callbacks sage-desktop registers, in both spellings, since
    Sage compares them character for character.
    """

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: tuple[str, ...]
    password: str
    users: tuple[DemoUser, ...]
    sole_trader: str = SOLE_TRADER
    accountant: str = ACCOUNTANT
    us_user: str = US_USER
    developer: str = DEVELOPER
    accountant_business_count: int = ACCOUNTANT_BUSINESSES

    def user(self, email: str) -> DemoUser:
        """The demo user with that e-mail (case-insensitive), or KeyError."""
        wanted = email.strip().lower()
        for user in self.users:
            if user.email == wanted:
                return user
        raise KeyError(email)


def _hex_id(rng: random.Random) -> str:
    """A 32-hex-digit id, the shape of Sage's user and business ids."""
    return f"{rng.getrandbits(128):032x}"


def _uuid(rng: random.Random) -> str:
    raw = f"{rng.getrandbits(128):032x}"
    return f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:]}"


_rng = random.Random(SEED)
_USERS = (
    DemoUser(
        _hex_id(_rng),
        SOLE_TRADER,
        "Sam",
        "Whitfield",
        "GB",
        "sole trader, one GB business",
    ),
    DemoUser(
        _hex_id(_rng),
        ACCOUNTANT,
        "Alex",
        "Morgan",
        "GB",
        f"accountant, {ACCOUNTANT_BUSINESSES:,} businesses (GB/IE/CA)",
    ),
    DemoUser(
        _hex_id(_rng),
        US_USER,
        "Jordan",
        "Reyes",
        "US",
        "US region, one business (for the region mismatch)",
    ),
    DemoUser(
        _hex_id(_rng),
        DEVELOPER,
        "Dev",
        "Portal",
        "GB",
        "developer-portal login, no business",
    ),
)

DEMO = DemoRegistration(
    client_id=f"{_uuid(_rng)}/{_uuid(_rng)}",
    client_secret="sbx-" + f"{_rng.getrandbits(160):040x}",
    redirect_uris=tuple(
        f"http://{host}:{port}/callback"
        for host in ("localhost", "127.0.0.1")
        for port in (8765, 8766, 8767)
    ),
    password=PASSWORD,
    users=_USERS,
)

# --- business names -------------------------------------------------------

_SURNAMES = {
    "GB": (
        "Hartley",
        "Ashworth",
        "Pemberton",
        "Whitmore",
        "Calloway",
        "Fenwick",
        "Thornton",
        "Bramley",
        "Kingsley",
        "Holloway",
        "Radcliffe",
        "Ellison",
        "Marsden",
        "Atherton",
        "Sutcliffe",
        "Hargreaves",
        "Lockwood",
        "Barlow",
        "Dunmore",
        "Prescott",
        "Wainwright",
        "Cartwright",
        "Fairbairn",
        "Oakley",
        "Bradshaw",
        "Ridley",
        "Hollins",
        "Metcalfe",
        "Goodwin",
        "Stanhope",
        "Griffiths",
        "Llewellyn",
        "Pritchard",
        "Jenkins",
        "Morgan",
        "Patel",
        "Shah",
        "Khan",
        "Campbell",
        "MacLeod",
        "Fraser",
        "Robertson",
    ),
    "IE": (
        "O'Connell",
        "Byrne",
        "Murphy",
        "Kavanagh",
        "Doyle",
        "Brennan",
        "Fitzgerald",
        "Gallagher",
        "Keane",
        "Lynch",
        "McCarthy",
        "Nolan",
        "O'Sullivan",
        "Quinn",
        "Ryan",
        "Walsh",
        "Whelan",
        "Dunne",
        "Farrell",
        "Hennessy",
        "Moloney",
        "O'Brien",
        "Power",
        "Sheehan",
        "Tierney",
    ),
    "CA": (
        "Tremblay",
        "Gagnon",
        "Roy",
        "Côté",
        "Bouchard",
        "Gauthier",
        "Morin",
        "Lavoie",
        "Fortin",
        "MacDonald",
        "Campbell",
        "Wilson",
        "Thompson",
        "Chen",
        "Singh",
        "Leblanc",
        "Fraser",
        "Bergeron",
        "Pelletier",
        "Young",
        "Sinclair",
        "McKenzie",
        "Dubois",
        "Nguyen",
        "Harper",
    ),
}
_PLACES = {
    "GB": (
        "Harrogate",
        "Kendal",
        "Ludlow",
        "Whitby",
        "Stroud",
        "Buxton",
        "Penrith",
        "Alnwick",
        "Hexham",
        "Skipton",
        "Ilkley",
        "Malvern",
        "Frome",
        "Tenby",
        "Wells",
        "Bakewell",
        "Thirsk",
        "Helmsley",
        "Dorking",
        "Marlow",
        "Oakham",
        "Rye",
        "Wimborne",
        "Cheltenham",
        "Bristol",
        "Leeds",
    ),
    "IE": (
        "Kilkenny",
        "Wexford",
        "Galway",
        "Tralee",
        "Sligo",
        "Ennis",
        "Athlone",
        "Cobh",
        "Dingle",
        "Clonakilty",
        "Westport",
        "Navan",
        "Carlow",
        "Killarney",
        "Dundalk",
        "Bray",
    ),
    "CA": (
        "Maple Ridge",
        "Kelowna",
        "Moncton",
        "Lunenburg",
        "Kingston",
        "Saskatoon",
        "Canmore",
        "Peterborough",
        "Nanaimo",
        "Fredericton",
        "Guelph",
        "Red Deer",
        "Trois-Rivières",
        "Whistler",
        "Halifax",
    ),
}
_TRADES = (
    "Plumbing",
    "Joinery",
    "Electrical",
    "Landscaping",
    "Bakery",
    "Dental Care",
    "Physiotherapy",
    "Roofing",
    "Builders",
    "Motors",
    "Garden Centre",
    "Accountancy",
    "Veterinary Practice",
    "Catering",
    "Brewing",
    "Printers",
    "Opticians",
    "Florists",
    "Interiors",
    "Cleaning Services",
    "Removals",
    "Bookshop",
    "Coffee Roasters",
    "Farm Shop",
    "Architects",
    "Surveyors",
    "Tiling",
    "Glazing",
    "Pharmacy",
    "Hair Studio",
    "Pet Supplies",
    "Engineering",
    "Logistics",
    "Software",
    "Consulting",
    "Dairy",
    "Kitchens",
    "Cycles",
    "Photography",
    "Tutoring",
    "Yoga Studio",
    "Hardware",
)
_SUFFIXES = {
    "GB": ("Ltd", "Ltd", "Ltd", "Limited", "LLP", "& Co", ""),
    "IE": ("Ltd", "Ltd", "Limited", "DAC", "Teoranta", ""),
    "CA": ("Inc.", "Inc.", "Ltd.", "Corp.", ""),
}
_STREETS = (
    "High Street",
    "Station Road",
    "Church Lane",
    "Mill Road",
    "Market Square",
    "Victoria Road",
    "Main Street",
    "King Street",
    "Bridge Street",
    "Park Avenue",
)


def _business_name(rng: random.Random, region: str) -> str:
    surnames = _SURNAMES[region]
    pattern = rng.randrange(4)
    if pattern == 0:
        base = f"{rng.choice(surnames)} {rng.choice(_TRADES)}"
    elif pattern == 1:
        first, second = rng.sample(surnames, 2)
        base = f"{first} & {second}"
    elif pattern == 2:
        base = f"{rng.choice(_PLACES[region])} {rng.choice(_TRADES)}"
    else:
        base = f"{rng.choice(surnames)} & Sons {rng.choice(_TRADES)}"
    suffix = rng.choice(_SUFFIXES[region])
    return f"{base} {suffix}".strip()


def _postcode(rng: random.Random, region: str) -> str:
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    if region == "GB":
        area = rng.choice(("LS", "HG", "BS", "YO", "GL", "LA", "SY", "M", "EH"))
        return (
            f"{area}{rng.randint(1, 29)} {rng.randint(1, 9)}"
            f"{rng.choice(letters)}{rng.choice(letters)}"
        )
    if region == "IE":
        return f"{rng.choice(('A', 'D', 'H', 'R', 'V', 'X'))}{rng.randint(10, 99)} " + (
            "".join(rng.choice("ACDEFHKNPRTVWXY0123456789") for _ in range(4))
        )
    if region == "CA":
        return (
            f"{rng.choice('ABCEGHJKLMNPRSTVXY')}{rng.randint(0, 9)}"
            f"{rng.choice('ABCEGHJKLMNPRSTVWXYZ')} {rng.randint(0, 9)}"
            f"{rng.choice('ABCEGHJKLMNPRSTVWXYZ')}{rng.randint(0, 9)}"
        )
    return f"{rng.randint(10000, 99999)}"


def _business(
    rng: random.Random,
    region: str,
    name: str,
    *,
    active: bool = True,
    is_demo: bool = False,
    city: str | None = None,
) -> dict[str, Any]:
    business_id = _hex_id(rng)
    year = rng.randint(2012, 2023)
    created = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T09:00:00Z"
    town = city or rng.choice(_PLACES.get(region, ("Austin", "Denver", "Boise")))
    return {
        "id": business_id,
        "displayed_as": name,
        "$path": f"/businesses/{business_id}",
        "name": name,
        "address_line_1": f"{rng.randint(1, 240)} {rng.choice(_STREETS)}",
        "address_line_2": "",
        "city": town,
        "postal_code": _postcode(rng, region),
        "country": {
            "id": region,
            "displayed_as": f"{REGIONS[region]} ({region})",
            "$path": f"/countries/{region}",
        },
        "telephone": f"0{rng.randint(1000, 9999)} {rng.randint(100000, 999999)}",
        "website": "",
        "is_demo": is_demo,
        "subscriptions": [
            {
                "displayed_as": "Sage Accounting",
                "$path": f"/subscriptions/{business_id}",
                "active": active,
                "active_as_of": created,
                "expires_at": None if active else "2024-03-31T23:59:59Z",
            }
        ],
        "created_at": created,
        "updated_at": created,
    }


def build_catalogue() -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Every demo business by id, and each demo user's businesses in order.

    The first business of a user is their lead business. The accountant's
    list mixes GB, IE and CA clients; a few have an inactive subscription
    and exactly one is a demo company.
    """
    rng = random.Random(SEED + 1)
    catalogue: dict[str, dict[str, Any]] = {}
    memberships: dict[str, list[str]] = {user.email: [] for user in DEMO.users}

    def add(email: str, business: dict[str, Any]) -> None:
        catalogue[business["id"]] = business
        memberships[email].append(business["id"])

    add(SOLE_TRADER, _business(rng, "GB", "Whitfield Carpentry", city="Kendal"))
    add(US_USER, _business(rng, "US", "Reyes Landscaping LLC", city="Austin"))

    names: set[str] = set()
    regions = ("GB",) * 6 + ("IE",) * 2 + ("CA",) * 2
    inactive = set(rng.sample(range(20, ACCOUNTANT_BUSINESSES), ACCOUNTANT_INACTIVE))
    demo_index = 3
    for index in range(ACCOUNTANT_BUSINESSES):
        region = "GB" if index == 0 else rng.choice(regions)
        if index == demo_index:
            name = "Demo Company (Sage Sample Data) Ltd"
        else:
            name = _business_name(rng, region)
            while name in names:
                name = _business_name(rng, region)
        names.add(name)
        add(
            ACCOUNTANT,
            _business(
                rng,
                region,
                name,
                active=index not in inactive,
                is_demo=index == demo_index,
            ),
        )
    return catalogue, memberships
