"""A conversation with a system prompt, and a setting changed while a reply streams.

    python examples/multi_turn.py [MODEL [MAX_TOKENS]]

The sampler reads a LiveSettings before every token, so the change (in a
real program: a slider, on another thread) applies from the next token on,
and the reply's record says at which token.
"""

import sys

from chord_core import ChatSession, LiveSettings, Model, SamplerSettings, resolve_model

model = Model.load(resolve_model(sys.argv[1] if len(sys.argv) > 1 else "SmolLM2-135M-Instruct.Q4_1"))
max_tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 64
session = ChatSession(model)
live = LiveSettings(SamplerSettings(temperature=1.0, seed=11, max_tokens=max_tokens))
messages = [{"role": "system", "content": "You are a terse assistant who answers in one sentence."}]

for question in ("What is a prime number?", "Give me an example of one."):
    messages.append({"role": "user", "content": question})
    print(f"> {question}")
    reply = session.chat(messages, live)
    for i, piece in enumerate(reply):
        print(piece, end="", flush=True)
        if i == 2:  # cooler from the fourth token on
            live.update(temperature=0.2)
    print()
    messages.append({"role": "assistant", "content": reply.result.text})
    print(f"[{reply.result.reason}; settings changed: {reply.result.record['settings_changes']}; "
          f"{reply.result.record['timings']['reused_tokens']} prompt tokens reused from the cache]")
    live.update(temperature=1.0)
