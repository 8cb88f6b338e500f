"""benchmarks/pretrain.py on a tiny model: the stage's loop and the bare loop both measured."""

from __future__ import annotations

from benchmarks.pretrain import main


def test_pretrain_benchmark_compares_the_stage_loop_with_a_bare_loop() -> None:
    result = main(["--tiny", "--steps", "6", "--warmup", "2", "--batch", "16"])["pretrain"]
    assert result["images_per_s"]["ecogen"] > 0 and result["images_per_s"]["bare"] > 0
    assert result["ecogen_vs_bare"] > 0
    assert (result["precision"], result["device"], result["batch"]) == ("32-true", "cpu", 16)
