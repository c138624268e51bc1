"""`chord-chat web`'s command line, without a browser: the command each
browser session runs, the warning for a non-loopback bind, bad input."""

from __future__ import annotations

import shlex
import sys

import pytest

from chord_core.cli.common import engine_options
from chord_core.cli.speculation_option import check_speculation_args
from chord_tui.cli import build_parser, main
from chord_tui.web import app_command, exposure_warning


def test_each_browser_session_runs_the_chat_ui_with_the_web_options(tmp_path):
    model = str(tmp_path / "my models" / "a model.gguf")  # spaces: the command goes through a shell
    web_args = build_parser().parse_args(["web", model, "--backend", "numpy", "--threads", "3", "--kv-type", "f16",
                                          "--port", "8123"])
    argv = shlex.split(app_command(web_args.model, engine_options(web_args)))
    assert argv[:3] == [sys.executable, "-m", "chord_tui"]
    chat_args = build_parser().parse_args(argv[3:])
    assert chat_args.command == "chat"
    assert chat_args.model == model
    assert engine_options(chat_args) == engine_options(web_args) == {"backend": "numpy", "threads": 3,
                                                                     "kv_type": "f16"}


def test_each_browser_session_gets_the_gpu_layers_and_speculation_options_web_was_given():
    web_args = build_parser().parse_args(["web", "m.gguf", "--backend", "cuda", "--gpu-layers", "7",
                                          "--draft", "d.gguf", "--draft-max", "3", "--lookup", "4"])
    command = app_command(web_args.model, engine_options(web_args), check_speculation_args(web_args), web_args.draft)
    chat_args = build_parser().parse_args(shlex.split(command)[3:])
    assert engine_options(chat_args) == {"backend": "cuda", "threads": None, "kv_type": "f32", "gpu_layers": 7}
    assert check_speculation_args(chat_args) == check_speculation_args(web_args)
    assert chat_args.draft == "d.gguf"


def test_web_with_no_lookup_turns_it_off_in_each_session():
    web_args = build_parser().parse_args(["web", "--no-lookup"])
    command = app_command(web_args.model, engine_options(web_args), check_speculation_args(web_args), web_args.draft)
    chat_args = build_parser().parse_args(shlex.split(command)[3:])
    assert chat_args.lookup == 0 and chat_args.draft is None


def test_web_with_an_unknown_draft_model_is_one_line_and_serves_nothing(capsys):
    assert main(["web", "--draft", "no-such-draft"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-draft" in err


def test_web_without_a_model_opens_the_default_model_in_each_session():
    web_args = build_parser().parse_args(["web"])
    chat_args = build_parser().parse_args(shlex.split(app_command(web_args.model, engine_options(web_args)))[3:])
    assert chat_args.command == "chat" and chat_args.model is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_binding_beyond_loopback_warns_that_there_is_no_authentication(host):
    warning = exposure_warning(host)
    assert warning is not None and host in warning and "no authentication" in warning


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_binding_loopback_needs_no_warning(host):
    assert exposure_warning(host) is None


def test_web_with_an_unknown_model_is_one_line_and_serves_nothing(capsys):
    assert main(["web", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-model" in err


def test_web_with_a_port_out_of_range_is_one_line(capsys):
    assert main(["web", "--port", "70000"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "chord-chat: error: --port must be between 1 and 65535, got 70000"
