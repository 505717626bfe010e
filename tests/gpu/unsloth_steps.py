"""A few Unsloth LoRA training steps on a tiny, randomly initialised Llama-style model.

Run with the venv's python that sparkfleet's builder made (tests/gpu/run_unsloth.sh). Makes a
word-level tokenizer and a 2-layer Llama locally (no network, no download), loads them with
Unsloth's FastLanguageModel, adds LoRA adapters and trains on a fixed batch. Prints one JSON
line: where torch came from, the versions, and the loss per step. Exit 1 unless the loss fell
and torch is the system's (outside the venv).
"""

# Unsloth must be imported before transformers, so the imports keep this order.
# ruff: noqa: I001

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "UNSLOTH_DISABLE_STATISTICS"):
    os.environ.setdefault(name, "1")

import unsloth  # noqa: E402  (Unsloth patches transformers: it comes first)
from unsloth import FastLanguageModel  # noqa: E402

import torch  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers, trainers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

CORPUS = [
    "the spark trains a small model on its own data",
    "a venv over the image keeps the image's torch",
    "unsloth adds lora adapters and the loss falls",
    "the fleet is converged every night by the timer",
] * 4
STEPS = int(os.environ.get("UNSLOTH_STEPS", "30"))


def make_model(directory: str) -> None:
    special = ["<pad>", "<unk>", "<s>", "</s>"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=special))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.save_pretrained(directory)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        torch_dtype="bfloat16",
    )
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(directory, safe_serialization=True)


def main() -> None:
    started = time.monotonic()
    inside = os.path.realpath(torch.__file__).startswith(os.path.realpath(sys.prefix) + os.sep)
    with tempfile.TemporaryDirectory(prefix="tiny-llama-") as directory:
        make_model(directory)
        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=directory, max_seq_length=64, dtype=torch.bfloat16, load_in_4bit=False
        )
    model = FastLanguageModel.get_peft_model(
        model,
        r=8,
        lora_alpha=16,
        lora_dropout=0,
        bias="none",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        use_gradient_checkpointing="unsloth",
        random_state=0,
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    batch = tokenizer(CORPUS[:4], return_tensors="pt", padding=True).to("cuda")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    model.train()
    losses = []
    for _ in range(STEPS):
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(float(out.loss), 4))
    import bitsandbytes
    import datasets
    import peft
    import transformers
    import trl
    import unsloth_zoo

    report = {
        "python": sys.executable,
        "sys_prefix": sys.prefix,
        "torch": torch.__version__,
        "torch_file": torch.__file__,
        "torch_inside_venv": inside,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(0),
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
        "versions": {
            m.__name__: getattr(m, "__version__", "?")
            for m in (unsloth, unsloth_zoo, transformers, trl, peft, datasets, bitsandbytes)
        },
        "model_class": type(model).__name__,
        "trainable_params": trainable,
        "total_params": total,
        "steps": STEPS,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "losses": losses,
        "seconds": round(time.monotonic() - started, 1),
    }
    print("UNSLOTH_REPORT " + json.dumps(report))
    ok = not inside and losses[-1] < losses[0] * 0.8 and torch.cuda.is_available()
    print("PASS" if ok else "FAIL", "loss", losses[0], "->", losses[-1], "torch outside the venv:", not inside)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
