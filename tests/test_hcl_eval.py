"""The contract test's HCL evaluator (tests/hcl_eval.py) must read Terraform functions the way
Terraform does, or the contract test compares the fixes with something the modules do not declare.
Expected values: https://developer.hashicorp.com/terraform/language/functions/setproduct"""

import pytest

from tests.hcl_eval import EvalError, template, walk


def _no_refs(path):
    raise AssertionError(f"unexpected reference {path}")


def test_setproduct_first_argument_varies_slowest():
    assert template('${setproduct(["a", "b"], ["x", "y", "z"])}', _no_refs) == [
        ["a", "x"], ["a", "y"], ["a", "z"], ["b", "x"], ["b", "y"], ["b", "z"]]
    assert template('${setproduct(["a"], ["x"], [1, 2])}', _no_refs) == [["a", "x", 1], ["a", "x", 2]]


def test_setproduct_with_an_empty_argument_is_empty():
    assert template('${setproduct([], ["x"])}', _no_refs) == []
    assert template('${setproduct(["a"], [])}', _no_refs) == []


def test_setproduct_needs_two_arguments():
    with pytest.raises(EvalError, match="at least two"):
        template('${setproduct(["a"])}', _no_refs)


def test_the_scp_overflow_attachment_keys():
    """The scp module's overflow attachments: one per (policy, target), keyed "policy/target"."""
    refs = {("var", "overflow_policies"): {"p-3": {}, "p-2": {}}, ("var", "target_ids"): ["ou-1", "r-1"]}
    keyed = template('${{ for pair in setproduct(keys(var.overflow_policies), var.target_ids) : '
                     '"${pair[0]}/${pair[1]}" => pair }}', lambda path: refs[path])
    assert keyed == {"p-2/ou-1": ["p-2", "ou-1"], "p-2/r-1": ["p-2", "r-1"],
                     "p-3/ou-1": ["p-3", "ou-1"], "p-3/r-1": ["p-3", "r-1"]}


def test_try_returns_the_first_argument_that_evaluates():
    refs = {("local", "m"): {"a": 1}}
    assert template('${try(local.m["b"], local.m["a"], 3)}', lambda path: walk(refs[path[:2]], path[2:])) == 1
    assert template('${try([][0], null)}', _no_refs) is None


def test_try_does_not_hide_what_the_evaluator_cannot_read():
    with pytest.raises(EvalError):
        template('${try(nosuchfunction(1), 2)}', _no_refs)
    with pytest.raises(EvalError, match="no argument"):
        template('${try([][0])}', _no_refs)
