"""Parameter-efficient fine-tuning: LoRA (via peft), deep visual prompts, head-only.

Import from the submodules: ``ecogen.peft.registry`` (``apply_peft``, ``PEFT_METHODS``; it
imports the peft library, and with it transformers) and ``ecogen.peft.tunable`` (byte counts and
module state, plain torch) — so stages that only count bytes start without peft.
"""
