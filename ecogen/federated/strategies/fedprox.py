"""FedProx (Li et al., 2020, arXiv 1812.06127) on EcoGen's split clients: each device adds
μ·(w − w₀) — the gradient of μ/2·‖w − w₀‖², w₀ the modules the round delivered — to its
parameters' gradients, so no extra tensor crosses a link.  μ is ``hfsl.proximal_mu``."""

from __future__ import annotations

from torch import Tensor

from ecogen.federated.strategies.base import GradientTerm, Strategy


class FedProx(Strategy):
    title = "EcoGen + FedProx"

    def gradient_term(self, params: list[Tensor]) -> GradientTerm:
        mu = self.cfg.proximal_mu
        anchor = [(p, p.detach().clone()) for p in params]

        def pull() -> None:
            for param, start in anchor:
                if param.grad is not None:
                    param.grad.add_(param.detach() - start.to(param.device), alpha=mu)

        return pull


STRATEGY = FedProx
