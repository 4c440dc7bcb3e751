import torch

from lmdiff.models.device import set_threads


def test_set_threads_honours_omp_num_threads_when_not_given(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        set_threads(None)
        assert torch.get_num_threads() == 1
        set_threads(2)  # an explicit setting wins
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "not-a-number")
        set_threads(None)  # falls back to the cores this process may use
        assert torch.get_num_threads() >= 1
    finally:
        torch.set_num_threads(before)
