"""The experiment and recipe registries: names resolve, duplicates and unknown names are clear errors."""
import pytest

from fastcnn.experiments import EXPERIMENTS, experiment, list_experiments
from fastcnn.experiments.cli import main as experiment_main
from fastcnn.train.task import RECIPES, Task


def test_recipes_register_themselves():
    from fastcnn.train.recipes import PAIRS

    assert {"perceptron", "mlp", "lenet", "alexnet", "conv_autoencoder", "llnet", "vae", "dcgan"} <= set(RECIPES)
    assert PAIRS["dcgan"] == ("dcgan_generator", "dcgan_discriminator")


def test_a_second_recipe_with_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="two training recipes named 'lenet'"):
        type("AnotherLeNet", (Task,), {"name": "lenet"})
    assert RECIPES["lenet"].__name__ == "LeNetTask"


def test_a_second_experiment_with_a_taken_name_is_refused():
    name = "__framework_test__"

    @experiment(name, "test only")
    def first(ctx):
        pass
    try:
        with pytest.raises(ValueError, match="two experiments"):
            experiment(name, "again")(first)
    finally:
        del EXPERIMENTS[name]


def test_unknown_experiment_lists_the_known_ones(capsys):
    assert experiment_main(["no_such_experiment"]) == 2
    err = capsys.readouterr().err
    assert "no_such_experiment" in err and "known:" in err
    for name in list_experiments():
        assert name in err
