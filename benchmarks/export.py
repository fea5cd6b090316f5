"""Benchmark of `pcopilot export gguf` and of the GGUF it makes, against baselines measured in the same run.

    .venv/bin/python benchmarks/export.py                 # scratch:small (≈ 20M parameters) with a LoRA adapter
    .venv/bin/python benchmarks/export.py --model tiny --tokens 64

Model: a `scratch:` preset built from config with a byte-level BPE tokenizer trained on a slice of the running
interpreter's standard library (no network), and a non-zero LoRA adapter (r 16 on every linear layer). For each
outtype (f16, q8_0):

- export: `run_export_gguf` (merge, llama.cpp's converter, FIM-metadata and tokenizer checks) against the converter
  alone on the already merged model: the ratio is what merging and checking add;
- size: the GGUF against the merged model's safetensors (fp32);
- local completion: greedy tokens/s of llama.cpp on the GGUF (`pcopilot run`'s generation loop) against transformers
  (fp32, KV cache) on the merged model, prompt 128 tokens, --tokens new tokens, one thread count for both.
"""

from __future__ import annotations

import argparse
import os
import sysconfig
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PCOPILOT_PROGRESS", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch and llama.cpp share the cores: no spinning threads
REPEATS = 3
"""Generation speeds are the best of this many runs (the machine may be shared)."""


def stdlib_texts(limit: int = 400) -> list[str]:
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:limit]
    return [f.read_text(encoding="utf-8", errors="replace") for f in files]


def build_model_and_adapter(preset: str, work: Path) -> tuple[Path, Path]:
    import torch
    from peft import LoraConfig, get_peft_model

    from personal_copilot.dataset import get_family, train_tokenizer
    from personal_copilot.modeling import build_scratch_model

    tokenizer = train_tokenizer(stdlib_texts(), get_family("starcoder"), vocab_size=8192)
    model = build_scratch_model(f"scratch:{preset}", tokenizer, max_positions=2048, seed=0)
    base, adapter = work / "base", work / "adapter"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)
    torch.manual_seed(0)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(adapter)
    return base, adapter


def transformers_tokens_per_second(model_dir: Path, prompt: list[int], tokens: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = torch.tensor([prompt])
    seconds = []
    with torch.no_grad():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False)  # warm-up
        for _ in range(REPEATS):
            start = time.perf_counter()
            model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
            seconds.append(time.perf_counter() - start)
    return tokens / min(seconds)


def llama_cpp_tokens_per_second(gguf: Path, prompt: list[int], tokens: int, threads: int) -> float:
    from personal_copilot.export.local import open_model

    llm = open_model(gguf, 1024, threads=threads)
    seconds = []
    try:
        llm.eval(prompt[:8])  # warm-up
        for _ in range(REPEATS):
            start = time.perf_counter()
            # end-of-generation tokens are not stopped at, like transformers' min_new_tokens
            for generated, _token in enumerate(llm.generate(prompt, temp=0.0, reset=True), start=1):
                if generated == tokens:
                    break
            seconds.append(time.perf_counter() - start)
        return tokens / min(seconds)
    finally:
        llm.close()


def main() -> None:
    import json

    import torch

    from personal_copilot.dataset import get_family, load_tokenizer
    from personal_copilot.export import GgufConfig, fim_metadata, find_converter, run_export_gguf
    from personal_copilot.export.converter import ConversionSpec, run_converter
    from personal_copilot.export.model_source import materialize, resolve_model_source

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", choices=["tiny", "small"], help="scratch: preset")
    parser.add_argument("--tokens", type=int, default=128, help="new tokens per generation")
    args = parser.parse_args()
    threads = torch.get_num_threads()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base, adapter = build_model_and_adapter(args.model, work)
        tokenizer = load_tokenizer(str(base))
        merged = materialize(resolve_model_source(str(base), adapter), tokenizer, work / "merged")
        merged_bytes = sum(f.stat().st_size for f in merged.glob("*.safetensors"))
        prompt = tokenizer.encode(stdlib_texts(1)[0], add_special_tokens=False)[:128]
        hf_speed = transformers_tokens_per_second(merged, prompt, args.tokens)
        converter = find_converter()
        spec = ConversionSpec(
            architecture=json.loads((merged / "config.json").read_text())["architectures"][0],
            pre_tokenizer="gpt-2",
            metadata=fim_metadata(tokenizer.get_vocab(), get_family("starcoder")),
        )
        print(f"scratch:{args.model}: merged safetensors {merged_bytes / 2**20:.1f} MiB, {threads} threads")
        print(f"transformers fp32 greedy: {hf_speed:,.0f} tok/s")
        header = f"{'outtype':8} {'export s':>9} {'converter s':>12} {'ratio':>6} {'MiB':>7} {'size ratio':>10}"
        print(header + f" {'llama.cpp tok/s':>16} {'vs transformers':>16}")
        for outtype in ("f16", "q8_0"):
            start = time.perf_counter()
            report = run_export_gguf(
                GgufConfig(model=str(base), adapter=adapter, output=work / f"{outtype}.gguf", outtype=outtype)
            )
            export_seconds = time.perf_counter() - start
            start = time.perf_counter()
            run_converter(converter, spec, merged, work / f"plain-{outtype}.gguf", outtype, work / "log")
            converter_seconds = time.perf_counter() - start
            speed = llama_cpp_tokens_per_second(Path(report.output), prompt, args.tokens, threads)
            ratio = export_seconds / converter_seconds
            print(
                f"{outtype:8} {export_seconds:9.1f} {converter_seconds:12.1f} {ratio:6.2f}"
                f" {report.size_bytes / 2**20:7.1f} {report.size_bytes / merged_bytes:10.2f}"
                f" {speed:16,.0f} {speed / hf_speed:16.2f}"
            )


if __name__ == "__main__":
    main()
