"""Parameter-efficient fine-tuning: LoRA (via peft), deep visual prompts, head-only."""

from ecogen.peft.registry import PEFT_METHODS, apply_peft
from ecogen.peft.tunable import load_tunable_state, module_bytes, state_bytes, tunable_state

__all__ = ["PEFT_METHODS", "apply_peft", "load_tunable_state", "module_bytes", "state_bytes", "tunable_state"]
