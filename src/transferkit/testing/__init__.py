"""Contract checks for tasks, strategies and backbones, for the packaged ones and for plug-ins.

As scikit-learn ships `check_estimator` and `parametrize_with_checks`, this package ships the rules
transferkit's own registered objects are tested against, so a plug-in registered with
`register_task`, `register_strategy` or `register_backbone` is checked the same way::

    from transferkit.testing import check_strategy, parametrize_with_checks

    check_strategy("my-probe")              # raises AssertionError naming the broken rule

    @parametrize_with_checks(["my-probe"])  # one pytest case per check
    def test_my_probe(obj, check):
        check(obj)

The checks fit on the tiny data sets made here (`TINY_DATA`, one per input modality). Nothing in
transferkit imports this package, and it needs pytest only for `parametrize_with_checks`.
"""
from .checks import (Check, applicable_strategies, check_backbone, check_backbone_config_rebuilds_the_same_architecture,
                     check_backbone_forward_gives_features_of_the_documented_shape,
                     check_backbone_layer_groups_partition_the_trainable_parameters,
                     check_backbone_scratch_variant_is_the_same_architecture,
                     check_clone_gives_an_unfitted_estimator_with_equal_params, check_extend_grows_or_refuses_in_one_line,
                     check_fit_save_load_predicts_the_same, check_strategy, check_strategy_agrees_with_its_registry_entry,
                     check_strategy_options_have_defaults, check_task, check_task_agrees_with_its_registry_entry,
                     check_task_has_an_applicable_strategy, check_task_is_constructible_with_no_arguments, checks_for,
                     tasks_for)
from .data import (COLOURS, SMALL_OPTIONS, SMALL_PARAMS, TINY_BATCHES, TINY_DATA, TINY_NEW_CLASS, TinyData,
                   make_boxed_images, make_image_folder, small_params, tiny_batch, tiny_boxes, tiny_images, tiny_new_class,
                   tiny_series, tiny_texts)
from .parametrize import parametrize_with_checks

__all__ = [
    "COLOURS", "Check", "SMALL_OPTIONS", "SMALL_PARAMS", "TINY_BATCHES", "TINY_DATA", "TINY_NEW_CLASS", "TinyData",
    "applicable_strategies", "check_backbone", "check_backbone_config_rebuilds_the_same_architecture",
    "check_backbone_forward_gives_features_of_the_documented_shape",
    "check_backbone_layer_groups_partition_the_trainable_parameters",
    "check_backbone_scratch_variant_is_the_same_architecture", "check_clone_gives_an_unfitted_estimator_with_equal_params",
    "check_extend_grows_or_refuses_in_one_line", "check_fit_save_load_predicts_the_same", "check_strategy",
    "check_strategy_agrees_with_its_registry_entry", "check_strategy_options_have_defaults", "check_task",
    "check_task_agrees_with_its_registry_entry", "check_task_has_an_applicable_strategy",
    "check_task_is_constructible_with_no_arguments", "checks_for", "make_boxed_images", "make_image_folder", "parametrize_with_checks",
    "small_params", "tasks_for", "tiny_batch", "tiny_boxes", "tiny_images", "tiny_new_class", "tiny_series", "tiny_texts",
]
