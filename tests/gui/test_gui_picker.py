"""The business picker: search, keyboard, progressive loading, 10,000 rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from guikit import make_businesses, save_shot
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from sage_desktop.models import Business
from sage_desktop.ui.picker import BusinessPicker


def _picker(qtbot: QtBot, **kwargs: object) -> BusinessPicker:
    picker = BusinessPicker(**kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(picker)
    picker.show()
    qtbot.waitExposed(picker)
    return picker


def test_typing_filters_by_name_case_insensitively(qtbot: QtBot, shots: Path) -> None:
    picker = _picker(qtbot)
    picker.set_businesses(make_businesses(300))

    qtbot.keyClicks(picker.search, "FLORIST 0001")

    names = [picker.model.business_at(r).name for r in range(picker.model.rowCount())]
    assert names
    assert all("Florist 0001" in n for n in names)
    assert "match" in picker.status.text()
    save_shot(picker, shots, "picker-filtered")


def test_search_matches_anywhere_in_the_id(qtbot: QtBot) -> None:
    businesses = make_businesses(50)
    picker = _picker(qtbot)
    picker.set_businesses(businesses)

    qtbot.keyClicks(picker.search, businesses[17].id[4:14].upper())

    assert picker.model.rowCount() == 1
    assert picker.model.business_at(0) == businesses[17]


def test_down_and_enter_pick_the_business(qtbot: QtBot) -> None:
    picker = _picker(qtbot)
    picker.set_businesses(make_businesses(20))
    qtbot.keyClicks(picker.search, "garage")

    qtbot.keyClick(picker.search, Qt.Key.Key_Down)
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)

    chosen = picker.chosen_business()
    assert chosen is not None
    assert chosen.name == "Garage 00007 Ltd"
    assert picker.result() == BusinessPicker.DialogCode.Accepted


def test_escape_cancels(qtbot: QtBot) -> None:
    picker = _picker(qtbot)
    picker.set_businesses(make_businesses(5))

    qtbot.keyClick(picker.search, Qt.Key.Key_Escape)

    assert picker.result() == BusinessPicker.DialogCode.Rejected
    assert picker.chosen_business() is None


def test_typing_in_the_table_goes_to_the_search_box(qtbot: QtBot) -> None:
    picker = _picker(qtbot)
    picker.set_businesses(make_businesses(30))
    picker.table.setFocus()

    qtbot.keyClicks(picker.table, "dental")

    assert picker.search.text() == "dental"
    assert picker.focusWidget() is picker.search


def test_inactive_business_is_listed_but_cannot_be_chosen(
    qtbot: QtBot, shots: Path
) -> None:
    picker = _picker(qtbot)
    businesses = make_businesses(10, inactive_every=4)
    picker.set_businesses(businesses)
    inactive = businesses[3]
    row = picker.model.row_of(inactive.id)
    assert row is not None
    index = picker.model.index(row, 0)
    tip = picker.model.data(index, Qt.ItemDataRole.ToolTipRole)

    qtbot.mouseClick(
        picker.table.viewport(),
        Qt.MouseButton.LeftButton,
        pos=picker.table.visualRect(index).center(),
    )

    assert "inactive" in tip.lower()
    assert not picker.table.selectionModel().isRowSelected(row)
    assert not picker.ok_button.isEnabled()
    qtbot.keyClick(picker.table, Qt.Key.Key_Return)
    assert picker.chosen_business() is None
    assert "inactive" in picker.error.text().lower()
    save_shot(picker, shots, "picker-inactive-refused")


def test_an_inactive_business_tells_sages_reason_on_hover(qtbot: QtBot) -> None:
    picker = _picker(qtbot)
    businesses = make_businesses(10, inactive_every=4)
    expired = "The Sage Accounting subscription expired on 2026-10-31."
    businesses[3] = dataclasses.replace(businesses[3], inactive_reason=expired)
    picker.set_businesses(businesses)

    def tip(business: Business) -> str:
        row = picker.model.row_of(business.id)
        assert row is not None
        index = picker.model.index(row, 0)
        return str(picker.model.data(index, Qt.ItemDataRole.ToolTipRole))

    assert tip(businesses[3]).startswith(expired)
    assert "advises against" in tip(businesses[3])
    # Without Sage's words, the general explanation.
    assert "not active" in tip(businesses[7])


def test_arrow_keys_select_active_rows(qtbot: QtBot) -> None:
    picker = _picker(qtbot)
    picker.set_businesses(make_businesses(10, inactive_every=3))

    qtbot.keyClick(picker.search, Qt.Key.Key_Down)

    row = picker.table.currentIndex().row()
    assert row == 1
    assert picker.table.selectionModel().isRowSelected(row)
    assert picker.ok_button.isEnabled()


def test_lead_business_is_marked_and_chosen_first(qtbot: QtBot) -> None:
    picker = _picker(qtbot)
    picker.set_businesses(make_businesses(10))

    first = picker.model.data(picker.model.index(0, 0))

    assert first.startswith("\u2605")
    assert picker.current_business_id() == make_businesses(1)[0].id


def test_remembered_business_is_preselected_when_its_page_arrives(
    qtbot: QtBot, shots: Path
) -> None:
    businesses = make_businesses(2500)
    remembered = businesses[1234]
    picker = _picker(qtbot, remembered_id=remembered.id, connection_label="Ann")

    picker.begin_loading()
    picker.add_batch(businesses[:200], 200, 2500)
    assert picker.model.rowCount() == 200
    assert picker.current_business_id() == businesses[0].id
    picker.add_batch(businesses[200:600], 600, 2500)
    assert picker.progress.text() == "Loading businesses: 600 of 2,500"
    save_shot(picker, shots, "picker-loading")
    picker.add_batch(businesses[600:], 2500, 2500)
    picker.finish_loading()

    assert picker.current_business_id() == remembered.id
    assert picker.notice.isHidden()


def test_a_remembered_business_that_is_gone_asks_to_pick_again(
    qtbot: QtBot, shots: Path
) -> None:
    picker = _picker(qtbot, remembered_id="gone-business")

    picker.set_businesses(make_businesses(40))

    assert not picker.notice.isHidden()
    assert "no longer reachable" in picker.notice.text()
    save_shot(picker, shots, "picker-business-gone")


def test_reload_keeps_the_current_choice(qtbot: QtBot) -> None:
    businesses = make_businesses(100)
    picker = _picker(qtbot)
    picker.set_businesses(businesses)
    picker.select_business(businesses[42].id)

    with qtbot.waitSignal(picker.reload_requested):
        picker.reload_button.click()
    picker.set_businesses(list(reversed(businesses)))

    assert picker.current_business_id() == businesses[42].id


def test_sorting_by_name_keeps_the_filter(qtbot: QtBot) -> None:
    picker = _picker(qtbot)
    picker.set_businesses(make_businesses(60))
    qtbot.keyClicks(picker.search, "bakery")

    picker.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.DescendingOrder)

    names = [picker.model.business_at(r).name for r in range(picker.model.rowCount())]
    assert names == sorted(names, reverse=True)
    assert all("Bakery" in n for n in names)


def test_ten_thousand_businesses_filter_and_pick(qtbot: QtBot, shots: Path) -> None:
    businesses = make_businesses(10_000)
    picker = _picker(qtbot)
    picker.set_businesses(businesses)
    assert "10,000 businesses" in picker.status.text()
    save_shot(picker, shots, "picker-10000")

    qtbot.keyClicks(picker.search, "09999")
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)

    chosen = picker.chosen_business()
    assert chosen == businesses[9999] or chosen is None
    if chosen is None:  # 9999 is inactive in this set: picking is refused
        assert not picker.error.isHidden()


def test_duplicate_ids_across_pages_are_listed_once(qtbot: QtBot) -> None:
    picker = _picker(qtbot)
    one = Business(id="b1", name="One")
    picker.begin_loading()
    picker.add_batch([one], 1, 2)
    picker.add_batch([one], 2, 2)
    picker.finish_loading()

    assert picker.model.rowCount() == 1


def test_only_the_lead_business_is_painted_bold(qtbot: QtBot, shots: Path) -> None:
    picker = _picker(qtbot)
    picker.set_businesses(make_businesses(30))
    qtbot.keyClicks(picker.search, "0001")
    picker.table.viewport().repaint()

    fonts = [
        picker.model.data(picker.model.index(r, 0), Qt.ItemDataRole.FontRole)
        for r in range(picker.model.rowCount())
    ]

    assert all(f is None for f in fonts)
    save_shot(picker, shots, "picker-no-lead-shown")


def test_backspace_and_late_pages_give_the_same_rows_as_a_fresh_search(
    qtbot: QtBot,
) -> None:
    businesses = make_businesses(600)
    picker = _picker(qtbot)
    picker.begin_loading(600)
    picker.add_batch(businesses[:200], 200, 600)
    qtbot.keyClicks(picker.search, "bakery 00")
    qtbot.keyClick(picker.search, Qt.Key.Key_Backspace)
    picker.add_batch(businesses[200:], 600, 600)
    picker.finish_loading()
    qtbot.keyClicks(picker.search, "1")
    qtbot.keyClick(picker.search, Qt.Key.Key_Backspace)
    qtbot.keyClick(picker.search, Qt.Key.Key_Backspace)

    shown = [picker.model.business_at(r) for r in range(picker.model.rowCount())]
    expected = [b for b in businesses if "bakery " in b.name.casefold()]
    assert picker.search.text() == "bakery "
    assert shown == expected
