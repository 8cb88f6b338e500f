"""Which logged params stop a resume: configuration values that changed, not measured facts."""

from ecogen.tracking.resume import params_diff


def test_params_diff_reports_changed_and_missing_configuration_only() -> None:
    current = {"hfsl.lr": "0.001", "hfsl.rounds": "4", "seed": "0"}
    logged = {"hfsl.lr": "0.0002", "seed": "0", "data_version": "abc.dir", "block_ranges": "[(0, 2)]"}
    assert params_diff(logged, current) == ["hfsl.lr: 0.0002 → 0.001", "hfsl.rounds: (absent) → 4"]
    assert params_diff({**current, "client_images": "600"}, current) == []


def test_upstream_follows_shared_stages_trials_and_cycles() -> None:
    from ecogen.tracking.resume import upstream

    shared = {"ecogen.stage": "pretrain"}
    assert upstream(shared, "finetune", None, None)
    assert not upstream({"ecogen.stage": "finetune"}, "pretrain", None, None)
    assert upstream(shared, "hfsl", ("c1", 0), None)  # every trial reads the shared stages
    trial = {"ecogen.stage": "hfsl", "ecogen.row": "c1", "ecogen.replicate": "0"}
    assert not upstream(trial, "hfsl", ("c2", 0), None)  # trials are independent
    relay0 = {"ecogen.stage": "relay", "ecogen.cycle": "0"}
    assert upstream(relay0, "finetune", None, 1)  # cycle 1 starts from cycle 0's relayed FM
    assert not upstream(relay0, "finetune", None, 0)
    assert upstream({"ecogen.stage": "finetune", "ecogen.cycle": "0"}, "relay", None, 0)
    assert not upstream(relay0, "pretrain", None, None)
