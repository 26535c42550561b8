"""The shared server driven by the AWS CLI v1 (from PyPI, in the same virtualenv as pytest)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REGION

AWS = Path(sys.executable).parent / "aws"


def aws(endpoint, account, *args):
    """Runs `aws --endpoint-url ... --output json ARGS` as `account`; returns (code, json|None, stderr)."""
    if not AWS.exists():
        pytest.fail(f"{AWS} is missing: pip install -r tests/compat/requirements.txt into this virtualenv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": account,
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    result = subprocess.run([str(AWS), "--endpoint-url", endpoint, "--output", "json", *args],
                            env=env, capture_output=True, text=True, timeout=60)
    out = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, out, result.stderr


def test_destination_lifecycle_with_the_cli(endpoint, account):
    target = f"arn:aws:kinesis:{REGION}:{account}:stream/central"
    role = f"arn:aws:iam::{account}:role/CWLtoKinesisRole"
    # The target stream comes first: AWS refuses a destination whose stream does not exist.
    code, _, err = aws(endpoint, account, "kinesis", "create-stream", "--stream-name", "central",
                       "--shard-count", "1")
    assert code == 0, err
    code, out, err = aws(endpoint, account, "logs", "put-destination", "--destination-name", "cli-dest",
                         "--target-arn", target, "--role-arn", role, "--tags", "env=dev,team=core")
    assert code == 0, err
    created = out["destination"]
    arn = f"arn:aws:logs:{REGION}:{account}:destination:cli-dest"
    assert (created["destinationName"], created["arn"], created["targetArn"], created["roleArn"]) == (
        "cli-dest", arn, target, role)
    assert isinstance(created["creationTime"], int)

    code, _, err = aws(endpoint, account, "logs", "put-destination", "--destination-name", "other",
                       "--target-arn", target, "--role-arn", role)
    assert code == 0, err

    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "222222222222"},
        "Action": "logs:PutSubscriptionFilter", "Resource": arn}]})
    code, out, err = aws(endpoint, account, "logs", "put-destination-policy", "--destination-name", "cli-dest",
                         "--access-policy", policy)
    assert (code, out) == (0, None), err

    code, out, err = aws(endpoint, account, "logs", "describe-destinations", "--destination-name-prefix", "cli")
    assert code == 0, err
    [described] = out["destinations"]
    assert described["arn"] == arn
    assert described["creationTime"] == created["creationTime"]
    assert described["accessPolicy"] == policy

    code, out, err = aws(endpoint, account, "logs", "list-tags-for-resource", "--resource-arn", arn)
    assert (code, out) == (0, {"tags": {"env": "dev", "team": "core"}}), err

    code, out, err = aws(endpoint, account, "logs", "delete-destination", "--destination-name", "cli-dest")
    assert (code, out) == (0, None), err
    code, out, err = aws(endpoint, account, "logs", "describe-destinations")
    assert code == 0, err
    assert [d["destinationName"] for d in out["destinations"]] == ["other"]

    code, _, err = aws(endpoint, account, "logs", "delete-destination", "--destination-name", "cli-dest")
    assert code in (254, 255), (code, err)
    assert "ResourceNotFoundException" in err


def test_cli_reports_server_validation_errors(endpoint, account):
    code, out, err = aws(endpoint, account, "logs", "describe-destinations", "--limit", "51")
    assert code in (254, 255), (code, out, err)
    assert out is None
    assert "An error occurred (InvalidParameterException) when calling the DescribeDestinations operation" in err
    assert ("1 validation error detected: Value '51' at 'limit' failed to satisfy constraint: "
            "Member must have value less than or equal to 50") in err
