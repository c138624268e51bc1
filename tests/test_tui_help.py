"""Help screen lists every key binding; the command palette has every action."""

from __future__ import annotations

from textual.command import CommandList, CommandPalette
from textual.widgets import Input

from fake_engine import make_app, settle, wait_until

from chord_tui.screens.help import HelpScreen, format_keys

SIZE = (120, 40)

# Every user-facing action the chat UI has, as the palette must offer it.
ACTIONS = [
    "Stop generating", "New conversation", "Rename conversation", "Delete conversation",
    "Search conversations", "Regenerate reply", "Continue reply", "Previous alternative",
    "Next alternative", "Edit last message", "Copy last reply", "Export conversation",
    "Toggle token inspector", "Show prompt", "Toggle side panel", "Toggle conversation list",
    "Models", "Help",
]


async def test_help_screen_lists_every_binding(tmp_path):
    from chord_tui.app import ChordApp
    from chord_tui.screens.chat import ChatScreen
    from chord_tui.screens.models import ModelsScreen
    from chord_tui.widgets.chat_input import ChatInput
    from chord_tui.widgets.conversation_list import ConversationListView
    from chord_tui.widgets.conversation_view import ConversationView
    from chord_tui.widgets.token_view import TokenView

    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        # what is on screen, one "keys   description" line per binding
        lines = [" ".join(line.split()) for static in app.screen.query(".help-rows")
                 for line in str(static.render()).splitlines()]
        for cls in (ChordApp, ChatScreen, ChatInput, ConversationView, ConversationListView, TokenView, ModelsScreen):
            for binding in cls.BINDINGS:
                expected = f"{format_keys(binding.key)} {binding.tooltip or binding.description}"
                assert " ".join(expected.split()) in lines, (cls, binding.key)
        assert "Ctrl+p Command palette" in lines
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def test_format_keys():
    assert format_keys("ctrl+r") == "Ctrl+r"
    assert format_keys("left_square_bracket") == "["
    assert format_keys("shift+enter,ctrl+j") == "Shift+Enter / Ctrl+j"


async def test_command_palette_offers_every_action(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for action in ACTIONS:
            assert action in titles, action
        # and running one from the palette works: toggle the inspector
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        app.screen.query_one(Input).value = "Toggle token inspector"
        commands = app.screen.query_one(CommandList)
        await wait_until(pilot, lambda: commands.option_count > 0)  # it searches in a worker
        await pilot.press("enter")
        await pilot.pause()
        assert app.chat.inspector


async def test_palette_regenerate_runs_async_action(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.chat.chat_input.text = "hi"
        app.chat.chat_input.focus()
        await pilot.press("enter")
        await settle(app, pilot)
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Regenerate reply")
        app.call_later(command.callback)
        await pilot.pause()
        await settle(app, pilot)
        assert len(app.chat.state.messages[-1].alternatives) == 2
