#!/usr/bin/env python3
"""Writes a random-weight Gemma 2 GGUF with the decoder shapes of a PaliGemma 2 variant.

For the side-by-side against llama.cpp (docs/performance.md): llama.cpp has no PaliGemma
support, so its `llama-bench` runs the PaliGemma 2 decoder alone (a Gemma 2 model with the
same width, depth, heads and 257216-row vocabulary). Uses the `gguf-py` package of an existing
llama.cpp source tree (passed with --gguf-py; nothing of llama.cpp lives in this project) and
numpy. Random values: normal * 0.02; the weights are only there to be multiplied.

Tensors are declared first and then generated and written one at a time (GGUFWriter's
add_tensor_info / write_tensor_data), so memory stays near the largest tensor (the
embedding, ~1.2 GB in f16) instead of the whole 5 GB model.

usage: make_gemma2_gguf.py --gguf-py LLAMA_CPP_SRC/gguf-py --variant 3b --out model-f16.gguf
       [--dtype f16|bf16|f32] [--layers N]
"""
import argparse
import sys

import numpy as np

# PaliGemma 2 decoders (Gemma 2 2B / 9B / 27B): hidden, ffn, layers, heads, kv heads, head_dim,
# query_pre_attn_scalar
VARIANTS = {
    "3b": (2304, 9216, 26, 8, 4, 256, 256),
    "10b": (3584, 14336, 42, 16, 8, 256, 256),
    "28b": (4608, 36864, 46, 32, 16, 128, 144),
}
VOCAB = 257216
ROWS_PER_CHUNK = 8192  # rows generated at once: bounds the float32 scratch (~75 MB at 2304)


def storage(dtype):
    """numpy storage type of one weight element (bf16 is kept as its raw 16 bits)."""
    return {"f16": np.float16, "bf16": np.uint16, "f32": np.float32}[dtype]


def random_matrix(rng, rows, cols, dtype):
    """rows x cols of normal * 0.02 in the requested type, generated in row chunks."""
    out = np.empty((rows, cols), dtype=storage(dtype))
    for r0 in range(0, rows, ROWS_PER_CHUNK):
        r1 = min(rows, r0 + ROWS_PER_CHUNK)
        w = rng.standard_normal((r1 - r0, cols), dtype=np.float32)
        w *= 0.02
        if dtype == "bf16":  # truncate to the upper 16 bits (bf16), declared as BF16 below
            out[r0:r1] = (w.view(np.uint32) >> 16).astype(np.uint16)
        else:
            out[r0:r1] = w
    return out


def tensor_plan(variant, n_layers):
    """(name, shape, is_matrix) in file order; shapes are numpy (rows, cols)."""
    d, f, _, heads, kv, hd, _ = VARIANTS[variant]
    plan = [("token_embd.weight", (VOCAB, d), True), ("output_norm.weight", (d,), False)]
    for i in range(n_layers):
        p = f"blk.{i}."
        for n in ("attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"):
            plan.append((p + n + ".weight", (d,), False))
        plan += [
            (p + "attn_q.weight", (heads * hd, d), True),
            (p + "attn_k.weight", (kv * hd, d), True),
            (p + "attn_v.weight", (kv * hd, d), True),
            (p + "attn_output.weight", (d, heads * hd), True),
            (p + "ffn_gate.weight", (f, d), True),
            (p + "ffn_up.weight", (f, d), True),
            (p + "ffn_down.weight", (d, f), True),
        ]
    return plan


def add_metadata(w, variant, n_layers):
    d, f, _, heads, kv, hd, _ = VARIANTS[variant]
    w.add_name(f"paligemma2-{variant}-decoder-random")
    w.add_context_length(8192)
    w.add_embedding_length(d)
    w.add_block_count(n_layers)
    w.add_feed_forward_length(f)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_attn_logit_softcapping(50.0)
    w.add_final_logit_softcapping(30.0)
    w.add_sliding_window(4096)
    # A placeholder SentencePiece vocabulary of the right size (llama-bench feeds token ids).
    w.add_tokenizer_model("llama")
    w.add_token_list([b"<pad>", b"<eos>", b"<bos>", b"<unk>"] +
                     [f"<t{i}>".encode() for i in range(4, VOCAB)])
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types([3, 3, 3, 2] + [1] * (VOCAB - 4))
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf-py", required=True, help="LLAMA_CPP_SRC/gguf-py")
    ap.add_argument("--variant", default="3b", choices=sorted(VARIANTS))
    ap.add_argument("--dtype", default="f16", choices=["f16", "bf16", "f32"])
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    sys.path.insert(0, a.gguf_py)
    import gguf  # noqa: E402  (llama.cpp's package, from the given source tree)

    n_layers = a.layers or VARIANTS[a.variant][2]
    plan = tensor_plan(a.variant, n_layers)
    rng = np.random.default_rng(1)
    wtype = storage(a.dtype)
    raw = gguf.GGMLQuantizationType.BF16 if a.dtype == "bf16" else None

    w = gguf.GGUFWriter(a.out, "gemma2")
    add_metadata(w, a.variant, n_layers)
    for name, shape, is_matrix in plan:
        dt = np.dtype(wtype if is_matrix else np.float32)
        nbytes = int(np.prod(shape)) * dt.itemsize
        w.add_tensor_info(name, shape, dt, nbytes, raw_dtype=raw if is_matrix else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, is_matrix in plan:
        if is_matrix:
            w.write_tensor_data(random_matrix(rng, shape[0], shape[1], a.dtype))
        else:  # RMSNorm scales (Gemma stores them as scale - 1; any value multiplies the same)
            w.write_tensor_data(np.ones(shape, dtype=np.float32))
    w.close()


if __name__ == "__main__":
    main()
