"""Process-wide settings: quiet defaults never override the user's, core sharing is scoped."""

import os

import pytest
import torch

from ecogen.runtime.environment import DEFAULTS, quiet_defaults, share_cores


def test_quiet_defaults_keep_what_the_user_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    key = next(iter(DEFAULTS))
    monkeypatch.setenv(key, "user-choice")
    quiet_defaults()
    assert os.environ[key] == "user-choice"


def test_share_cores_restores_the_thread_count_on_exit() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with share_cores(10**6):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError), share_cores(10**6):
            raise RuntimeError("a failing edge stage")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_share_inside_a_share_divides_it() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(8)
        with share_cores(2):  # two trials side by side ...
            assert torch.get_num_threads() == 4
            with share_cores(4):  # ... each with four edges
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(before)
