"""Configuration validation: params.yaml, pipelines.yaml and --set overrides."""

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from ecogen.config import ConfigError, Params, load_params, load_pipelines, parse_set

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_project_files_validate_with_every_pipeline() -> None:
    specs = load_pipelines(ROOT / "pipelines.yaml")
    assert {"default", "quick"} <= set(specs.pipelines)
    for spec in specs.pipelines.values():
        load_params(ROOT / "params.yaml", spec.overrides)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"data": {"bogus": 1}}, "data.bogus"),
        ({"hfsl": {"rounds": "many"}}, "hfsl.rounds"),
        ({"hfsl": {"rounds": 0}}, "hfsl.rounds"),
        ({"data": {"test_per_domain": -5}}, "data.test_per_domain"),
        ({"data": {"labelled_fraction": 1.5}}, "data.labelled_fraction"),
        ({"data": {"labelled_fraction": -0.1}}, "data.labelled_fraction"),
        ({"hfsl": {"devices_per_cluster": 2}}, "hfsl.devices_per_cluster"),
        ({"peft": {"method": "adapterx"}}, "peft.method"),
        ({"topping": 1}, "topping"),
        # the HFSL levers (issue: HFSL that pays)
        ({"hfsl": {"local_steps": 0}}, "hfsl.local_steps"),
        ({"hfsl": {"server_optimizer": "fedyogi"}}, "hfsl.server_optimizer"),
        ({"hfsl": {"server_lr": 0}}, "hfsl.server_lr"),
        ({"hfsl": {"server_momentum": 1.0}}, "hfsl.server_momentum"),
        ({"hfsl": {"proximal_mu": -1}}, "hfsl.proximal_mu"),
        ({"hfsl": {"proximal_mu": 0.1}}, "hfsl.proximal_mu"),  # FedProx's μ without method fedprox
        ({"hfsl": {"method": "fedprox"}}, "hfsl.proximal_mu"),  # method fedprox without its μ
        ({"hfsl": {"method": "fedsgd"}}, "hfsl.method"),
        ({"relay": {"weighting": "loudest"}}, "relay.weighting"),
        ({"hfsl": {"lora_aggregation": "mean"}}, "hfsl.lora_aggregation"),
        ({"hfsl": {"augment": "strong"}}, "hfsl.augment"),
        ({"hfsl": {"unlabelled_view": "heavy"}}, "hfsl.unlabelled_view"),
        ({"hfsl": {"teacher": "oracle"}}, "hfsl.teacher"),
        ({"hfsl": {"ema_decay": 1.0}}, "hfsl.ema_decay"),
        ({"hfsl": {"logit_adjustment": -0.5}}, "hfsl.logit_adjustment"),
        ({"hfsl": {"edge_joins": "sometimes"}}, "hfsl.edge_joins"),
        ({"hfsl": {"method": "centralized", "server_optimizer": "fedadam"}}, "hfsl"),
        # DP mechanisms (issue 24, point 5)
        ({"hfsl": {"dp_mechanism": "shuffle", "dp_epsilon": 8}}, "hfsl.dp_mechanism"),
        ({"hfsl": {"dp_mechanism": "dp_sgd"}}, "hfsl"),  # a mechanism without its ε
        ({"hfsl": {"dp_mechanism": "dp_sgd", "dp_epsilon": 8, "unlabelled_weight": 0.5}}, "hfsl"),
        ({"hfsl": {"dp_mechanism": "dp_sgd", "dp_epsilon": 8, "feature_labels": 0.5}}, "hfsl"),
        ({"hfsl": {"dp_mechanism": "dp_sgd", "dp_epsilon": 8, "mae_weight": 0.5}}, "hfsl"),
        ({"hfsl": {"dp_mechanism": "central", "dp_epsilon": 8, "aggregation": "median"}}, "hfsl"),
        ({"hfsl": {"dp_example_clip": 0}}, "hfsl.dp_example_clip"),
    ],
)
def test_bad_values_name_their_key_on_one_line(tmp_path: Path, data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_params(_write(tmp_path, data))
    message = str(err.value)
    assert key in message and "\n" not in message


def test_cross_field_rule_devices_vs_depth(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="devices_per_cluster"):
        load_params(_write(tmp_path, {"model": {"depth": 2}, "hfsl": {"devices_per_cluster": 5}}))


def test_set_overrides_are_typed_and_validated(tmp_path: Path) -> None:
    path = _write(tmp_path, {})
    params = load_params(
        path, assignments=["hfsl.rounds=7", "data.domains=[identity, blur]", "energy.enabled=false"]
    )
    assert (
        params.hfsl.rounds == 7 and params.data.domains == ["identity", "blur"] and not params.energy.enabled
    )
    with pytest.raises(ConfigError, match="hfsl.rounds"):
        load_params(path, assignments=["hfsl.rounds=-1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["hfsl.rounds"])


def test_the_file_is_validated_before_overrides_hide_its_errors_and_empty_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, {"hfsl": [1, 2]})  # a section given as a list
    with pytest.raises(ConfigError, match="hfsl"):
        load_params(path, overrides={"hfsl": {"rounds": 2}})  # the override would replace it
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="empty"):
        load_params(empty)


def test_what_would_fail_mid_run_fails_at_validation() -> None:
    from torch import nn

    from ecogen.config.params import LORA_TARGETS
    from ecogen.models.vit import Block

    with pytest.raises(ValueError, match="patch_size 5 does not divide the 28×28 images"):
        Params.model_validate({"model": {"patch_size": 5}})
    with pytest.raises(ValueError, match=r"not \['attn'\]"):
        Params.model_validate({"peft": {"target_modules": ["qkv", "attn"]}})
    block = Block(8, 2, 2.0)
    assert {n for n, m in block.named_modules() if isinstance(m, nn.Linear)} == {
        "attn.qkv", "attn.proj", "fc1", "fc2"
    } and set(LORA_TARGETS) == {"qkv", "proj", "fc1", "fc2"}  # fmt: skip


def test_pipeline_overrides_merge_deeply(tmp_path: Path) -> None:
    path = _write(tmp_path, {"hfsl": {"rounds": 3, "clusters": 4}})
    params = load_params(path, overrides={"hfsl": {"rounds": 1}})
    assert params.hfsl.rounds == 1 and params.hfsl.clusters == 4


def test_pipelines_reject_unknown_stage_bad_order_and_bad_schedule(tmp_path: Path) -> None:
    def load(doc: dict) -> None:
        p = tmp_path / "pipelines.yaml"
        p.write_text(yaml.safe_dump(doc))
        load_pipelines(p)

    with pytest.raises(ConfigError, match="stages"):
        load({"pipelines": {"default": {"stages": ["prepare", "train"]}}})
    with pytest.raises(ConfigError, match="order"):
        load({"pipelines": {"default": {"stages": ["hfsl", "prepare"]}}})
    with pytest.raises(ConfigError, match="exactly one"):
        load({"pipelines": {"default": {"schedule": {"cron": "0 * * * *", "interval_seconds": 60}}}})
    with pytest.raises(ConfigError, match="default pipeline"):
        load({"default": "nope", "pipelines": {"a": {}}})


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", ".hidden", "a/b", "-flag", "x" * 65, ""])
@pytest.mark.parametrize("kind", ["pipeline", "profile"])
def test_pipeline_and_profile_names_are_plain_words_never_paths(tmp_path: Path, name: str, kind: str) -> None:
    doc: dict = {"default": "ok", "pipelines": {"ok": {}}}
    if kind == "pipeline":
        doc = {"default": "ok", "pipelines": {"ok": {}, name: {}}}
    else:
        doc["profiles"] = {name: {}}
    p = tmp_path / "pipelines.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=f"{kind} names are folder names under runs/"):
        load_pipelines(p)


def test_trials_expand_rows_over_replicates_with_validated_params(tmp_path: Path) -> None:
    from ecogen.config import expand_trials

    path = tmp_path / "pipelines.yaml"
    path.write_text(
        "pipelines:\n  default:\n    stages: [prepare, pretrain, finetune, hfsl]\n"
        "    trials:\n      stages: [hfsl]\n      replicates: 2\n"
        "      rows:\n        a: {hfsl: {clusters: 1}}\n        b: {hfsl: {method: splitfed}}\n"
    )
    spec = load_pipelines(path).pipelines["default"]
    assert spec.shared_stages == ["prepare", "pretrain", "finetune"]
    trials = expand_trials(Params(), spec.trials)
    assert [t.name for t in trials] == ["a-r0", "b-r0", "a-r1", "b-r1"]
    assert trials[0].params.hfsl.clusters == 1 and trials[0].params.hfsl.method == "ecogen"
    assert trials[3].params.hfsl.method == "splitfed" and trials[3].params.replicate == 1
    bad = spec.trials.model_copy(update={"rows": {"c": {"hfsl": {"method": "nope"}}}})
    with pytest.raises(ConfigError, match="row c: hfsl.method"):
        expand_trials(Params(), bad)
    assert spec.trials.parallel == 1  # one trial at a time unless asked


def test_fm_draws_repeat_every_row_and_replicate_on_another_foundation_model() -> None:
    from ecogen.config import expand_trials
    from ecogen.config.pipelines import Trials

    trials = expand_trials(Params(), Trials(stages=["hfsl"], rows={"a": {}, "b": {}}, fm_draws=2))
    assert [t.name for t in trials] == ["a-r0", "b-r0", "a-fm1-r0", "b-fm1-r0"]  # draw 0 keeps its names
    assert [t.params.pretrain.draw for t in trials] == [0, 0, 1, 1] == [t.draw for t in trials]
    with pytest.raises(ValidationError):
        Trials(stages=["hfsl"], rows={"a": {}}, fm_draws=0)
    with pytest.raises(ValidationError):
        Params.model_validate({"pretrain": {"draw": -1}})


def test_trials_at_once_must_be_a_positive_count(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yaml"
    text = (
        "pipelines:\n  default:\n    stages: [prepare, hfsl]\n"
        "    trials: {stages: [hfsl], rows: {a: {}}, parallel: %s}\n"
    )
    path.write_text(text % 2)
    assert load_pipelines(path).pipelines["default"].trials.parallel == 2  # type: ignore[union-attr]
    path.write_text(text % 0)
    with pytest.raises(ConfigError, match="parallel"):
        load_pipelines(path)


def test_trial_stages_must_end_the_pipeline(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        "pipelines:\n  default:\n    stages: [prepare, pretrain, finetune, hfsl, infer]\n"
        "    trials: {stages: [hfsl], rows: {a: {}}}\n"
    )
    with pytest.raises(ConfigError, match="last stages"):
        load_pipelines(path)


def test_a_row_may_not_change_what_its_shared_stages_were_made_with(tmp_path: Path) -> None:
    """A LoRA rank in a row of trials that share the edges' fine-tune would meet modules of another
    rank: refused (the rank needs a pipeline of its own, or finetune among the trial stages)."""
    path = tmp_path / "pipelines.yaml"
    text = (
        "pipelines:\n  default:\n    stages: [prepare, pretrain, finetune, hfsl]\n"
        "    trials: {stages: %s, rows: {a: {hfsl: {rounds: 2}}, rank-4: {peft: {lora_rank: 4}}}}\n"
    )
    path.write_text(text % "[hfsl]")
    with pytest.raises(ConfigError, match="row rank-4 overrides peft"):
        load_pipelines(path)
    path.write_text(text % "[finetune, hfsl]")
    assert load_pipelines(path).pipelines["default"].trials is not None


def test_profiles_overlay_the_pipeline_and_unknown_profiles_fail(tmp_path: Path) -> None:
    from ecogen.config import profile_overrides

    specs = load_pipelines(ROOT / "pipelines.yaml")
    cpu = profile_overrides(specs, "cpu")
    params = load_params(ROOT / "params.yaml", specs.pipelines["baselines"].overrides, profile=cpu)
    assert params.model.dim == cpu["model"]["dim"] and params.hfsl.clusters == 6
    with pytest.raises(ConfigError, match="unknown profile"):
        profile_overrides(specs, "nope")


def test_a_cycle_is_the_tail_of_the_pipeline_and_excludes_trials(tmp_path: Path) -> None:
    specs = load_pipelines(ROOT / "pipelines.yaml")
    cycles = specs.pipelines["cycles"]
    assert cycles.shared_stages == ["prepare", "pretrain"] and cycles.repeated_stages == [
        "finetune",
        "hfsl",
        "relay",
    ]
    path = tmp_path / "pipelines.yaml"
    path.write_text(
        "pipelines:\n  default:\n    stages: [prepare, pretrain, finetune, hfsl]\n    cycle: [finetune]\n"
    )
    with pytest.raises(ConfigError, match="cycle must be the last stages"):
        load_pipelines(path)


def test_pretrain_learning_rate_follows_the_stated_batch_rule() -> None:
    from ecogen.config.params import PretrainParams

    base = {"lr": 2e-3, "lr_batch": 128, "batch_size": 512}
    assert PretrainParams(**base).scaled_lr() == pytest.approx(2e-3)  # none: as given
    assert PretrainParams(**base, lr_scaling="sqrt").scaled_lr() == pytest.approx(4e-3)  # ×√4
    assert PretrainParams(**base, lr_scaling="linear").scaled_lr() == pytest.approx(8e-3)  # ×4
    assert PretrainParams(lr=2e-3, batch_size=128, lr_scaling="sqrt").scaled_lr() == pytest.approx(2e-3)
