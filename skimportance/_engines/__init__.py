"""The perturbation engines: one private family behind every perturbation method.

Modelled on ``sklearn/ensemble/_hist_gradient_boosting/``: the public methods
(``permutation``, ``conditional``...) import from here; nothing here imports them.
``docs/design.md`` says what each file holds.
"""
