"""Score a text: its perplexity, and what the model expected at each token.

    python examples/score_text.py [MODEL] [TEXT]

Model.logits evaluates the tokens in a fresh context and returns the logits
at every position; the log-softmax of row i gives the probability of token
i + 1 and of every alternative.
"""

import sys

import numpy as np

from chord_core import Model, resolve_model

model = Model.load(resolve_model(sys.argv[1] if len(sys.argv) > 1 else "SmolLM2-135M-Instruct.Q4_1"))
text = sys.argv[2] if len(sys.argv) > 2 else "The quick brown fox jumps over the lazy dog."
ids = model.tokenize(text, add_special=True)
logits = model.logits(ids).astype(np.float64)
logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)

scored = logp[np.arange(len(ids) - 1), ids[1:]]  # log p(token | the tokens before it)
print(f"perplexity {np.exp(-scored.mean()):.2f} over {len(scored)} tokens\n")
print(f"{'token':>14} {'p':>6}   top 3 the model expected")
for pos, token in enumerate(ids[1:]):
    top = np.argsort(-logp[pos])[:3]
    expected = ", ".join(f"{model.detokenize([int(t)])!r} {np.exp(logp[pos, t]):.2f}" for t in top)
    print(f"{model.detokenize([token])!r:>14} {np.exp(scored[pos]):6.2f}   {expected}")
