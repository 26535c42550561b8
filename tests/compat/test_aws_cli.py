"""The same server driven by the AWS CLI (v1, from PyPI)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

AWS = shutil.which("aws") or str(Path(sys.executable).parent / "aws")


def aws(server, account, *args):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": account, "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_MAX_ATTEMPTS": "1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    result = subprocess.run([AWS, "--endpoint-url", server.endpoint, "--output", "json", *args],
                            env=env, capture_output=True, text=True, timeout=60)
    return result.returncode, (json.loads(result.stdout) if result.stdout.strip() else None), result.stderr


def test_destination_lifecycle_with_the_cli(server, account):
    code, out, err = aws(server, account, "logs", "put-destination", "--destination-name", "cli-dest",
                         "--target-arn", f"arn:aws:kinesis:us-east-1:{account}:stream/s",
                         "--role-arn", f"arn:aws:iam::{account}:role/r", "--tags", "env=dev")
    assert code == 0, err
    arn = out["destination"]["arn"]
    assert arn == f"arn:aws:logs:us-east-1:{account}:destination:cli-dest"
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "222222222222"},
                                        "Action": "logs:PutSubscriptionFilter", "Resource": arn}]})
    code, _, err = aws(server, account, "logs", "put-destination-policy", "--destination-name", "cli-dest", "--access-policy", policy)
    assert code == 0, err
    code, out, err = aws(server, account, "logs", "describe-destinations", "--destination-name-prefix", "cli")
    assert code == 0, err
    assert [d["accessPolicy"] for d in out["destinations"]] == [policy]
    code, out, err = aws(server, account, "logs", "list-tags-for-resource", "--resource-arn", arn)
    assert (code, out) == (0, {"tags": {"env": "dev"}}), err
    code, _, err = aws(server, account, "logs", "delete-destination", "--destination-name", "cli-dest")
    assert code == 0, err
    code, _, err = aws(server, account, "logs", "describe-destinations", "--limit", "51")
    assert code != 0
    assert "InvalidParameterException" in err and "less than or equal to 50" in err
