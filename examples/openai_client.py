"""Talk to `chord-chat serve` with the official openai client (`pip install openai`).

    chord-chat serve SmolLM2-135M-Instruct.Q4_1 --port 8080 &
    python examples/openai_client.py [BASE_URL [MAX_TOKENS]]

BASE_URL defaults to http://127.0.0.1:8080/v1; the API key, if the server
was started with one, comes from $CHORD_API_KEY. One reply streamed, then
one whole, seeded: asked again, it is the same reply.
"""

import os
import sys

from openai import OpenAI

client = OpenAI(base_url=sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/v1",
                api_key=os.environ.get("CHORD_API_KEY", "none"))
max_tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 128
model = client.models.list().data[0].id
messages = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "What is a haiku?"}]

stream = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, stream=True)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()

reply = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, seed=7, temperature=0.8)
print(reply.choices[0].message.content)
print(f"[{reply.choices[0].finish_reason}; {reply.usage.prompt_tokens} prompt + "
      f"{reply.usage.completion_tokens} reply tokens]")
