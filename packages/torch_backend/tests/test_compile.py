"""The unrolled training step (forward + backward) runs under torch.compile."""

import torch

from setwise import torch_backend as B


def test_compiled_training_step_matches_eager():
    torch.manual_seed(0)
    torch._dynamo.reset()
    ea = B.EquilibriumAggregation(3, 4, hidden=(8, 4), num_steps=2, rng=0)
    x = torch.randn(7, 3)
    index = torch.tensor([0, 0, 1, 1, 1, 3, 3])

    def step(module):
        xx = x.clone().requires_grad_()
        ea.zero_grad()
        y, info = module(xx, index=index, num_sets=4, return_info=True)
        loss = y.square().sum() + info.aux_loss.sum()
        loss.backward()  # AOTAutograd's compiled backward: first order, no double backward
        return loss.detach(), [xx.grad, *(p.grad.clone() for p in ea.parameters())]

    eager_loss, eager_grads = step(ea)
    # aot_eager: dynamo capture (no graph break) + AOTAutograd backward, without the C++ build
    # of inductor (the benchmark compiles with inductor)
    loss, grads = step(torch.compile(ea, fullgraph=True, backend="aot_eager"))
    torch.testing.assert_close(loss, eager_loss)
    for a, b in zip(grads, eager_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
