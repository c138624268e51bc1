"""At 80x24, the smallest terminal the app is laid out for, nothing that
matters is cut off: whole footer keys (Help among them), and the models
table's name, quant and size."""

from __future__ import annotations

from fake_engine import make_app, start, wait_until
from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

from chord_tui.widgets.footer import FittingFooter

SMALL = (80, 24)


def footer_keys_fit(footer: FittingFooter) -> bool:
    """Every key shown ends before the command palette key, and F1 is shown."""
    keys = [k for k in footer.query(FooterKey) if k.display and not k.has_class("-command-palette")]
    palette = footer.query_one(".-command-palette", FooterKey)
    return (bool(keys) and all(k.region and k.region.right <= palette.region.x for k in keys)
            and any(k.action in ("help", "app.help") for k in keys))


async def test_the_chat_footer_shows_whole_keys_and_help_at_80x24(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await start(app, pilot)
        footer = app.chat.query_one(FittingFooter)
        await wait_until(pilot, lambda: footer_keys_fit(footer))
        shown = [k.action for k in footer.query(FooterKey) if k.display]
        assert shown[:3] == ["submit", "stop", "new_conversation"]  # the first keys stay


async def test_a_wide_chat_footer_shows_every_key(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(140, 30)) as pilot:
        await start(app, pilot)
        footer = app.chat.query_one(FittingFooter)
        await wait_until(pilot, lambda: footer_keys_fit(footer))
        assert all(k.display for k in footer.query(FooterKey))


def columns_in_view(table: DataTable) -> list[str]:
    """The labels of the columns that fit whole in the table's visible width."""
    right, shown = 0, []
    for column in table.ordered_columns:
        right += column.get_render_width(table)
        if right <= table.scrollable_content_region.width:
            shown.append(str(column.label))
    return shown


async def test_the_models_table_keeps_name_quant_and_size_at_80x24(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SMALL) as pilot:
        await start(app, pilot)
        await pilot.press("f4")
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 2)
        assert {"Name", "Quant", "Size"} <= set(columns_in_view(table))
        footer = app.screen.query_one(FittingFooter)
        await wait_until(pilot, lambda: footer_keys_fit(footer))
