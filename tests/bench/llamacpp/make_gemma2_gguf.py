#!/usr/bin/env python3
"""Writes a random-weight Gemma 2 GGUF with the decoder shapes of a PaliGemma 2 variant.

For the side-by-side against llama.cpp (docs/performance.md): llama.cpp has no PaliGemma
support, so its `llama-bench` runs the PaliGemma 2 decoder alone (a Gemma 2 model with the
same width, depth, heads and 257216-row vocabulary). Uses llama.cpp's own `gguf-py` (from
the clone the companion script makes) and numpy. Random values: normal * 0.02; the weights
are only there to be multiplied.

usage: make_gemma2_gguf.py --gguf-py LLAMA_CPP/gguf-py --variant 3b --out model-f16.gguf
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf-py", required=True)
    ap.add_argument("--variant", default="3b", choices=sorted(VARIANTS))
    ap.add_argument("--dtype", default="f16", choices=["f16", "bf16", "f32"])
    ap.add_argument("--layers", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    sys.path.insert(0, a.gguf_py)
    import gguf  # noqa: E402  (llama.cpp's package, from the clone)

    d, f, n_layers, heads, kv, hd, qpas = VARIANTS[a.variant]
    n_layers = a.layers or n_layers
    rng = np.random.default_rng(1)

    def mat(rows, cols):
        w = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02)
        if a.dtype == "f16":
            return w.astype(np.float16), None
        if a.dtype == "bf16":  # raw bf16 bits, declared as such
            return (w.view(np.uint32) >> 16).astype(np.uint16), gguf.GGMLQuantizationType.BF16
        return w, None

    def vec(n):
        return np.ones(n, dtype=np.float32)

    w = gguf.GGUFWriter(a.out, "gemma2")
    w.add_name(f"paligemma2-{a.variant}-decoder-random")
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

    def add(name, arr_and_type):
        arr, raw = arr_and_type
        if raw is None:
            w.add_tensor(name, arr)
        else:
            w.add_tensor(name, arr, raw_dtype=raw)

    add("token_embd.weight", mat(VOCAB, d))
    w.add_tensor("output_norm.weight", vec(d))
    for i in range(n_layers):
        p = f"blk.{i}."
        for n in ("attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"):
            w.add_tensor(p + n + ".weight", vec(d))
        add(p + "attn_q.weight", mat(heads * hd, d))
        add(p + "attn_k.weight", mat(kv * hd, d))
        add(p + "attn_v.weight", mat(kv * hd, d))
        add(p + "attn_output.weight", mat(d, heads * hd))
        add(p + "ffn_gate.weight", mat(f, d))
        add(p + "ffn_up.weight", mat(f, d))
        add(p + "ffn_down.weight", mat(d, f))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
