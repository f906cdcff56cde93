"""Recipe options: declared by a recipe (Task.recipe_options), set with `--option NAME=VALUE`."""
import json

import pytest
import torch

from fastcnn.cli import main
from fastcnn.train.recipes import RECIPES
from fastcnn.train.task import Option, parse_options


def test_values_take_the_defaults_type():
    class Recipe:
        name = "demo"
        recipe_options = {"count": Option(3), "rate": Option(0.5), "on": Option(False), "sizes": Option((1,)),
                          "kind": Option("a", choices=("a", "b")), "side": Option(64, limits=(16, 160))}
    got = parse_options(Recipe, ["count=7", "rate=1e-3", "on=true", "sizes=1,2,4", "kind=b", "side=160"])
    assert got == {"count": 7, "rate": 1e-3, "on": True, "sizes": (1, 2, 4), "kind": "b", "side": 160}
    assert parse_options(Recipe, []) == {}
    for bad, message in (("count=x", "--option count: expected int, got 'x'"),
                         ("sizes=1,a", "expected comma-separated ints"),
                         ("kind=c", "--option kind: expected one of a, b, got 'c'"),
                         ("side=15", "--option side: expected 16..160, got 15"),
                         ("count", "--option expects NAME=VALUE, got 'count'"),
                         ("nope=1", "--option nope: demo has no such option; its options: count (default 3)")):
        with pytest.raises(ValueError) as e:
            parse_options(Recipe, [bad])
        assert message in str(e.value)


def test_an_unknown_option_is_refused_before_work(tmp_path, capsys):
    assert main(["train", "llnet", "--out", str(tmp_path), "-o", "patchez=10"]) == 2
    err = capsys.readouterr().err
    assert "--option patchez: llnet has no such option" in err and "patches (default 20000)" in err
    assert not (tmp_path / "metrics.json").exists()


def test_the_old_flag_and_the_option_must_agree(tmp_path, capsys):
    assert main(["train", "llnet", "--out", str(tmp_path), "--noise", "poisson", "-o", "noise=gaussian"]) == 2
    assert "--noise poisson and --option noise=gaussian disagree" in capsys.readouterr().err


def test_options_reach_the_recipe_and_the_checkpoint(tmp_path):
    argv = ["train", "llnet", "--steps", "2", "--batch-size", "8", "--no-progress", "--threads", "2",
            "--out", str(tmp_path), "-o", "patches=64", "--option", "scales=1,4", "-o", "stride=5"]
    assert main(argv) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert (m["details"]["patches"], m["details"]["scales"], m["details"]["stride"]) == (64, [1, 4], 5)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["run"]["options"]["scales"] == "(1, 4)"
    # a resume with other options is another run: refused, naming the difference
    assert main(argv[:-2] + ["-o", "stride=3", "--resume"]) == 2


def test_recipes_that_read_options_declare_them():
    assert set(RECIPES["llnet"].recipe_options) >= {"noise", "patches", "scales", "stride", "gamma"}
    assert RECIPES["dcgan"].recipe_options["gan_loss"].choices == ("nonsaturating", "minimax")
    assert {"optimizer", "lr"} <= set(RECIPES["fcn8s"].recipe_options)


def test_every_declared_default_parses_back_to_itself():
    for name, recipe in RECIPES.items():
        for key, opt in recipe.recipe_options.items():
            if opt.default is None:   # "the recipe decides"; the type comes from kind
                text = str(opt.choices[0]) if opt.choices else "1"
                assert opt.kind is not None and opt.parse(key, text) == opt.kind(text), (name, key)
                continue
            text = ",".join(map(str, opt.default)) if isinstance(opt.default, tuple) else str(opt.default)
            assert opt.parse(key, text) == opt.default, (name, key)
