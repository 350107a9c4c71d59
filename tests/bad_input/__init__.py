"""The bad-input corpus: malformed, mistyped, oversized, unicode-edge and
injection-looking input at every door of the runtime (``cases.py``), run by
``tests/test_bad_input.py`` as one parametrized test."""
