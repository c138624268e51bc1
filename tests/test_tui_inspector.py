"""The token inspector and the prompt view."""

from __future__ import annotations

from fake_engine import (DEFAULT_REPLY, FakeEngine, fake_pieces, fake_render, make_app, prob_of, settle, split_tokens,
                         wait_until)
from textual.widgets import Static

from chord_tui.screens.prompt_view import PromptScreen
from chord_tui.widgets.message_view import MessageView
from chord_tui.widgets.token_view import TokenView, band

SIZE = (120, 40)


async def chat_once(app, pilot, text="hi"):
    await settle(app, pilot)
    app.chat.chat_input.text = text
    app.chat.chat_input.focus()
    await pilot.press("enter")
    await settle(app, pilot)


async def test_inspector_toggle_colours_tokens_by_probability(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await chat_once(app, pilot)
        reply = app.chat.query(MessageView).last()
        tokens = reply.query_one(TokenView)
        assert tokens.styles.display == "none"  # Markdown until the inspector is on
        await pilot.press("ctrl+t")
        assert app.chat.inspector and app.chat.has_class("-inspect")
        assert tokens.styles.display == "block" and reply.query_one(".message-body").styles.display == "none"
        pieces = split_tokens(DEFAULT_REPLY)
        assert [t[0] for t in tokens.tokens] == pieces
        content = tokens.build()
        # each token's span carries the colour of its probability band
        styles = [str(span.style) for span in content.spans]
        for index, style in enumerate(styles):
            assert f"on {band(prob_of(index))}" in style
        assert len({band(prob_of(i)) for i in range(len(pieces))}) > 2  # really varies
        await pilot.press("ctrl+t")
        assert not app.chat.has_class("-inspect")


async def test_selecting_a_token_shows_its_alternatives(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await chat_once(app, pilot)
        await pilot.press("ctrl+t")
        reply = app.chat.query(MessageView).last()
        tokens = reply.query_one(TokenView)
        tokens.focus()
        await pilot.press("right", "right")  # second token
        await pilot.pause()
        text = str(reply.query_one(".token-alternatives", Static).render())
        assert "token 2: ' Here'" in text and f"p={prob_of(1):.3f}" in text
        assert "' alt1'" in text and "' alt4'" in text
        assert len(text.splitlines()) == 1 + 5  # the token and its top-5
        # a mouse click on the first token selects it
        await pilot.click(tokens, offset=(0, 0))
        await pilot.pause()
        assert tokens.cursor == 0
        assert "token 1: 'Hello!'" in str(reply.query_one(".token-alternatives", Static).render())


async def test_inspector_survives_reload_from_the_store(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await chat_once(app, pilot)
        conv = app.chat.state.conversation_id
        await pilot.press("ctrl+n")
        await pilot.pause()
        await app.chat.open_conversation(conv)
        await pilot.press("ctrl+t")
        tokens = app.chat.query(MessageView).last().query_one(TokenView)
        assert len(tokens.tokens) == len(split_tokens(DEFAULT_REPLY))
        assert tokens.tokens[1][2][0] == (" Here", prob_of(1))


async def test_low_probability_tokens_are_underlined_under_no_color(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.no_color
        await chat_once(app, pilot)
        await pilot.press("ctrl+t")
        tokens = app.chat.query(MessageView).last().query_one(TokenView)
        content = tokens.build()
        for index, span in enumerate(content.spans):
            assert ("underline" in str(span.style)) == (prob_of(index) < 0.3)


async def test_prompt_view_shows_rendered_prompt_specials_and_count(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await chat_once(app, pilot, "first question")
        app.chat.chat_input.text = "draft"
        await pilot.press("f3")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
        screen = app.screen
        expected = fake_render([
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": DEFAULT_REPLY},
            {"role": "user", "content": "draft"},
        ])
        assert screen.prompt == expected
        title = str(screen.query_one("#prompt-title").render())
        assert f"{len(fake_pieces(expected))} tokens" in title and "unsent" in title
        shown = screen.query_one("#prompt-text", Static).render()
        assert str(shown) == expected
        special = [expected[s.start:s.end] for s in shown.spans if "reverse" in str(s.style)]
        assert special and set(special) == {"<|im_start|>", "<|im_end|>"}
        assert special.count("<|im_start|>") == 4  # three messages + the generation prompt
        await pilot.press("escape")
        assert not isinstance(app.screen, PromptScreen)


async def test_the_inspector_forgets_a_selection_when_the_reply_changes(tmp_path):
    engine = FakeEngine(replies=["one two three four five six", "short reply"])
    app = make_app(tmp_path, engine)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+t")
        await chat_once(app, pilot, "q")
        view = app.chat.query(MessageView).last()
        view.query_one(TokenView).action_jump(-1)
        await pilot.pause()
        assert "token 6" in view.alternatives_text()
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        view = app.chat.query(MessageView).last()
        assert view.content == "short reply"
        assert view.query_one(TokenView).cursor == -1
        assert "token 6" not in view.alternatives_text()


async def test_arrows_select_tokens_right_after_ctrl_t(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await chat_once(app, pilot)
        assert app.focused is app.chat.chat_input
        await pilot.press("ctrl+t", "right", "right")
        await pilot.pause()
        reply = app.chat.query(MessageView).last()
        assert reply.query_one(TokenView).cursor == 1
        assert "token 2: ' Here'" in reply.alternatives_text()
        await pilot.press("ctrl+t")  # the tokens hide: typing goes to the input again
        await pilot.press("x")
        assert app.chat.chat_input.text == "x"
