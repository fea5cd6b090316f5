"""`pcopilot train`: a recipe of setup -> train -> save -> report on transformers' Trainer and PEFT.

    pcopilot train --model bigcode/starcoderbase-1b --data data/ --method lora --output runs/sc1b-lora
    accelerate launch --config_file configs/accelerate/fsdp.yaml -m personal_copilot train --method full …

Python: `run_train(TrainConfig(model="scratch:tiny", data=["data/"], max_steps=20, output=Path("runs/t")))`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from personal_copilot.configs import EvalRows, check_output_owner, to_plain, write_report, write_run_config
from personal_copilot.dataset import FimEncoder, get_family, train_tokenizer
from personal_copilot.errors import PcopilotError
from personal_copilot.model_ref import ModelRef, require_model, resolve_model_ref
from personal_copilot.modeling import (
    build_scratch_model,
    check_attention,
    is_scratch,
    load_model,
    load_tokenizer,
    quantization_config,
    resolve_precision,
)
from personal_copilot.train.card import write_model_card
from personal_copilot.train.chat import ensure_chat_template
from personal_copilot.train.config import TrainConfig
from personal_copilot.train.data import TrainingData, build_chat_data, build_fim_data, fim_shards, parse_data_sources
from personal_copilot.train.lora import lora_target_modules
from personal_copilot.train.metrics import read_metrics
from personal_copilot.train.plots import plot_training_curves
from personal_copilot.train.report import TrainReport
from personal_copilot.train.resume import checkpoint_to_resume, interrupted

BASE_DIR = "base"
"""Where a scratch: run keeps the base model and tokenizer it created (the adapter's base)."""
_TOKENIZER_SAMPLE_DOCUMENTS = 20_000


def to_training_arguments(config: TrainConfig, precision: str, has_eval: bool) -> Any:
    """Our config mapped onto transformers' TrainingArguments (anything else via `extra_training_args`)."""
    from transformers import TrainingArguments

    from personal_copilot.modeling import has_cuda

    evaluate = has_eval and config.eval_steps > 0
    early_stopping = has_eval and config.early_stopping_patience is not None
    arguments: dict[str, Any] = {
        "output_dir": str(config.output),
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "learning_rate": config.optim.learning_rate,
        "lr_scheduler_type": config.optim.lr_scheduler_type,
        "warmup_steps": config.optim.warmup_steps,
        "weight_decay": config.optim.weight_decay,
        "max_grad_norm": config.optim.max_grad_norm,
        "optim": config.optim.optim,
        "logging_steps": config.logging_steps,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": config.eval_steps if evaluate else None,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "seed": config.seed,
        "data_seed": config.seed,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": not has_cuda(),
        "activation_checkpointing": config.gradient_checkpointing,
        "activation_checkpointing_kwargs": {"use_reentrant": False} if config.gradient_checkpointing else None,
        "report_to": [] if config.report_to == "none" else [config.report_to],
        "run_name": config.output.name,
        "include_num_input_tokens_seen": "all",
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "load_best_model_at_end": early_stopping,
        "metric_for_best_model": "eval_loss" if early_stopping else None,
    }
    unknown = set(config.extra_training_args) - set(TrainingArguments.__dataclass_fields__)
    if unknown:
        raise PcopilotError(f"--extra_training_args: TrainingArguments has no {', '.join(sorted(unknown))}")
    return TrainingArguments(**(arguments | config.extra_training_args))


def _scratch_tokenizer(config: TrainConfig, out: Path) -> Any:
    """The tokenizer of a scratch: run: --tokenizer, or one trained on the training side of the first --data."""
    if config.tokenizer:
        return load_tokenizer(config.tokenizer)
    from personal_copilot.dataset import iter_documents, read_document_sizes, split_documents

    family = get_family(config.family or "starcoder")
    shards = fim_shards(parse_data_sources(config.data)[0].location, out, 0)
    split = split_documents(read_document_sizes(shards), config.eval_fraction, config.seed, config.split_by)

    def training_texts():
        seen = 0
        for batch in iter_documents(shards):
            for document in batch:
                if split.side(document.repo_id, document.file_path) == "train":
                    yield document.content
                    seen += 1
                    if seen >= _TOKENIZER_SAMPLE_DOCUMENTS:
                        return

    return train_tokenizer(training_texts(), family, config.scratch_vocab_size)


def resolve_train_model(model: str) -> ModelRef:
    """The model `--model` names (a hub id, a model folder, a full or merged run, `base`); an adapter is refused."""
    return require_model(
        resolve_model_ref(model),
        "--model",
        f"merge it into its base first (pcopilot adapters merge --adapter {model} --output MERGED), then train "
        "--model MERGED",
    )


def _setup_model(config: TrainConfig, args: Any, precision: str) -> tuple[Any, Any, str, str | None]:
    """(tokenizer, model, base model reference, recorded family). A scratch: base is built once (by the main process)
    and saved to OUTPUT/base, so that the adapter has a base to load later and a resumed run starts from the same
    one."""
    out = config.output
    if not is_scratch(config.model):
        ref = resolve_train_model(config.model)
        tokenizer = load_tokenizer(config.tokenizer or ref.tokenizer)
        model = load_model(
            ref.base,
            precision=precision,
            attention=config.attn_implementation,
            quantize_4bit=config.method == "qlora",
        )
        return tokenizer, model, ref.base, ref.family
    base = out / BASE_DIR
    with args.main_process_first(desc="building the scratch base model"):
        if args.process_index == 0 and not (base / "config.json").is_file():
            tokenizer = _scratch_tokenizer(config, out)
            scratch = build_scratch_model(config.model, tokenizer, config.seq_len, config.seed)
            scratch.save_pretrained(base)
            tokenizer.save_pretrained(base)
    tokenizer = load_tokenizer(str(base))
    model = load_model(
        str(base), precision=precision, attention=config.attn_implementation, quantize_4bit=config.method == "qlora"
    )
    return tokenizer, model, str(base.resolve()), None


def _apply_lora(model: Any, config: TrainConfig, new_token_ids: list[int]) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from personal_copilot.modeling import workaround_peft_is_gradient_checkpointing

    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    lora = LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        bias="none",
        task_type="CAUSAL_LM",
        target_modules=lora_target_modules(model.config.model_type, config.lora.target_modules),
        trainable_token_indices=new_token_ids or None,
    )
    with workaround_peft_is_gradient_checkpointing():
        return get_peft_model(model, lora)


def _build_data(config: TrainConfig, tokenizer: Any, family: str | None) -> tuple[TrainingData, FimEncoder | None]:
    if config.task == "chat":
        return build_chat_data(config, tokenizer), None
    encoder = FimEncoder(tokenizer, family, require_fim=config.fim.rate > 0, repo_context=config.repo_context)
    return build_fim_data(config, tokenizer, encoder, config.output), encoder


def _rank_summary(model: Any, args: Any) -> dict[str, Any]:
    """What this process holds of the trainable weights: element count and a checksum (equal across data-parallel
    ranks when gradients were synchronised; smaller than the total when parameters are sharded)."""
    digest = hashlib.sha256()
    elements = 0
    for name, parameter in sorted(model.named_parameters()):
        if parameter.requires_grad:
            local = parameter.detach()
            if hasattr(local, "to_local"):  # a DTensor shard (FSDP2): count and hash what this rank holds
                local = local.to_local()
            elements += local.numel()
            digest.update(name.encode())
            digest.update(local.float().cpu().numpy().tobytes())
    return {
        "rank": args.process_index,
        "world_size": args.world_size,
        "elements": elements,
        "checksum": digest.hexdigest(),
    }


def _gather_rank_summaries(trainer: Any, out: Path) -> list[dict[str, Any]]:
    args = trainer.args
    ranks_dir = out / ".pcopilot" / "ranks"
    ranks_dir.mkdir(parents=True, exist_ok=True)
    summary = _rank_summary(trainer.model, args)
    (ranks_dir / f"rank-{args.process_index}.json").write_text(json.dumps(summary))
    trainer.accelerator.wait_for_everyone()
    return [json.loads((ranks_dir / f"rank-{i}.json").read_text()) for i in range(args.world_size)]


def _push_to_hub(out: Path, repo_id: str) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    url = api.create_repo(repo_id, exist_ok=True, private=True)
    api.upload_folder(folder_path=str(out), repo_id=repo_id, ignore_patterns=["checkpoint-*", ".pcopilot/*", "base/*"])
    return str(url)


def _count_parameters(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def run_train(config: TrainConfig) -> TrainReport:
    """Trains, saves the adapter (or model) and tokenizer into `config.output`, and returns the report."""
    from transformers import DataCollatorForSeq2Seq, EarlyStoppingCallback, Trainer, default_data_collator, set_seed
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils import logging as transformers_logging

    from personal_copilot.train.callbacks import MetricsFileCallback, RichProgressCallback

    transformers_logging.disable_progress_bar()  # ours is the rich bar of RichProgressCallback

    start = time.perf_counter()
    out = config.output
    precision = resolve_precision(config.precision)
    check_attention(config.attn_implementation)
    if config.method == "qlora":
        quantization_config(precision)  # bitsandbytes missing: fail before any work
    check_output_owner(out, "train")
    resume_from = checkpoint_to_resume(config)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    args = to_training_arguments(config, precision, has_eval=config.eval_fraction > 0)
    tokenizer, model, base_model, recorded_family = _setup_model(config, args, precision)
    set_seed(config.seed)  # the same LoRA init whether the scratch base was just built (a random draw) or reloaded
    new_tokens = ensure_chat_template(tokenizer) if config.task == "chat" else []
    if new_tokens:
        model.resize_token_embeddings(len(tokenizer))
    model.config.use_cache = False
    if config.method != "full":
        model = _apply_lora(model, config, tokenizer.convert_tokens_to_ids(new_tokens))
    data, encoder = _build_data(config, tokenizer, config.family or recorded_family)
    if data.eval is None:
        args.eval_strategy, args.load_best_model_at_end = "no", False
    collator = default_data_collator if data.task == "fim" else DataCollatorForSeq2Seq(tokenizer, padding="longest")
    callbacks = [MetricsFileCallback(out), RichProgressCallback()]
    if config.early_stopping_patience is not None and data.eval is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    tokens_before = _tokens_seen_at(resume_from)
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM as the CLI turns it
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, RichProgressCallback):
                callback.on_train_end(args, trainer.state, trainer.control)
        raise interrupted(config, trainer.state.global_step) from interrupt
    eval_loss = _final_eval_loss(trainer) if data.eval is not None else None
    trainer.save_model(str(out))
    ranks = _gather_rank_summaries(trainer, out)
    trainable, total = _count_parameters(trainer.model)
    runtime = result.metrics.get("train_runtime") or (time.perf_counter() - start)
    tokens_seen = int(trainer.state.num_input_tokens_seen)
    train_losses = [m["loss"] for m in read_metrics(out / "metrics.jsonl") if "loss" in m]
    report = TrainReport(
        output=str(out),
        model=base_model,
        method=config.method,
        task=config.task,
        family=encoder.family.name if encoder and encoder.family else None,
        steps=trainer.state.global_step,
        tokens_seen=tokens_seen,
        train_loss=train_losses[-1] if train_losses else None,
        eval_loss=eval_loss,
        seconds=round(time.perf_counter() - start, 2),
        tokens_per_second=round((tokens_seen - tokens_before) / max(runtime, 1e-9), 1),
        trainable_parameters=trainable,
        total_parameters=total,
        world_size=args.world_size,
        resumed_from=Path(resume_from).name if resume_from else None,
        ranks=ranks,
        data=data.splits,
        skipped=data.skipped,
    )
    if args.process_index == 0:
        rows = EvalRows(to_plain(config.fim), config.seq_len, config.seed, config.repo_context, config.eval_fraction)
        write_run_config(
            out,
            "train",
            config,
            base_model=base_model,
            family=report.family,
            data_splits=data.splits,
            eval_rows=rows,
            trained_on_4bit_base=config.method == "qlora",
        )
        plot_training_curves(out)
        write_report(out, report)
        write_model_card(out, config, report)  # replaces PEFT's empty template, which a push would publish
        if config.push_to_hub:
            report.pushed_to = _push_to_hub(out, config.push_to_hub)
            write_report(out, report)
    return report


def _final_eval_loss(trainer: Any) -> float:
    """The eval loss at the last step: the one logged there if the schedule already evaluated, else a new one."""
    history = trainer.state.log_history
    logged = [h["eval_loss"] for h in history if "eval_loss" in h and h.get("step") == trainer.state.global_step]
    return logged[-1] if logged else trainer.evaluate()["eval_loss"]


def _tokens_seen_at(checkpoint: str | None) -> int:
    if not checkpoint:
        return 0
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    return int(state.get("num_input_tokens_seen") or 0)
