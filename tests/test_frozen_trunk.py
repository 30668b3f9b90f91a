"""The frozen-trunk cache: the same outputs and gradients as the plain model, fewer passes."""

import pytest
import torch
import transformers

from stepwise.llm.tiny import build_tiny
from stepwise.train import frozen_trunk
from stepwise.train.dpo import _freeze_below


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny4")
    build_tiny(path, layers=4)
    return path


def _model(path):
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    _freeze_below(model, 2)
    return model


def _batch():
    """Two right-padded rows, as the DPO collator pads a chosen and a rejected step."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 200, (2, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def test_same_logits_and_gradients_and_a_second_pass_skips_the_trunk(tiny_dir):
    plain, cached = _model(tiny_dir), _model(tiny_dir)
    trunk = frozen_trunk.install(cached, 2)
    batch = _batch()

    expected = plain(**batch, use_cache=False).logits
    expected.sum().backward()
    for _ in range(2):
        cached.zero_grad()
        got = cached(**batch, use_cache=False).logits
        got.sum().backward()
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert (trunk.hits, trunk.misses) == (1, 1)

    plain_top = dict(plain.get_decoder().layers[3].named_parameters())
    for name, param in cached.get_decoder().layers[2].named_parameters():  # layer 3 after trunk
        torch.testing.assert_close(param.grad, plain_top[name].grad)
    assert all(p.grad is None for p in trunk.parameters())

    other = dict(batch, input_ids=batch["input_ids"].flip(1))
    cached(**other, use_cache=False)
    assert trunk.misses == 2  # another batch is another entry


def test_generation_runs_through_and_remove_restores_the_weights_names(tiny_dir):
    plain, cached = _model(tiny_dir), _model(tiny_dir)
    trunk = frozen_trunk.install(cached, 2)
    prompt = _batch()["input_ids"][:1]
    settings = {"max_new_tokens": 4, "do_sample": False}
    assert cached.generate(prompt, **settings).tolist() == plain.generate(prompt, **settings).tolist()
    assert trunk.hits == 0  # a generating pass is never kept

    frozen_trunk.remove(cached)
    assert list(cached.state_dict()) == list(plain.state_dict())


def test_refuses_a_trunk_that_still_learns(tiny_dir):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir)
    with pytest.raises(ValueError, match="frozen"):
        frozen_trunk.install(model, 2)


def test_the_cache_keeps_within_its_limit(tiny_dir):
    model = _model(tiny_dir)
    trunk = frozen_trunk.install(model, 2)
    batch = _batch()
    model(**batch, use_cache=False)
    one = trunk._kept_bytes
    trunk.limit_bytes = one  # room for one batch: a second pushes the first out
    model(**dict(batch, input_ids=batch["input_ids"].flip(1)), use_cache=False)
    model(**batch, use_cache=False)
    assert trunk.hits == 0 and trunk.misses == 3 and trunk._kept_bytes == one
