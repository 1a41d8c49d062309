"""provisioner/converge.py beyond what the emulator can show: IAM eventual consistency."""

from __future__ import annotations


def test_a_role_iam_has_not_propagated_yet_is_retried_with_a_deterministic_clock():
    # CloudTrail refuses a role created a moment ago (IAM is eventually consistent); the emulator
    # never does, so the retry is driven here by the real botocore error shape.
    import botocore.exceptions
    import pytest

    from provisioner.converge import with_propagation_retry

    def refusal(code: str):
        return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "not yet"}}, "CreateTrail")

    answers = [refusal("InvalidCloudWatchLogsRoleArnException"), refusal("InvalidCloudWatchLogsRoleArnException"),
               {"TrailARN": "arn"}]
    slept: list[float] = []

    def call():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert with_propagation_retry(call, sleep=slept.append) == {"TrailARN": "arn"} and slept == [5.0, 5.0]
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        with_propagation_retry(lambda: (_ for _ in ()).throw(refusal("AccessDenied")), sleep=slept.append)
    assert slept == [5.0, 5.0]  # other errors are not retried
