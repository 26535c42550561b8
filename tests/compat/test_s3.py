"""S3 and STS with the AWS CLI v1 and boto3, as a new user would try them."""
import subprocess

import boto3
import pytest
from botocore.config import Config

from conftest import REGION
from test_aws_cli import aws


def s3_client(endpoint, account):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=account,
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def test_cli_s3_mb_cp_ls_rm(endpoint, account, tmp_path):
    bucket = f"cli-{account}"
    code, _, err = aws(endpoint, account, "s3", "mb", f"s3://{bucket}")
    assert code == 0, err
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello from the cli\n" * 1000)
    code, _, err = aws(endpoint, account, "s3", "cp", str(source), f"s3://{bucket}/dir/hello.txt")
    assert code == 0, err
    back = tmp_path / "back.txt"
    code, _, err = aws(endpoint, account, "s3", "cp", f"s3://{bucket}/dir/hello.txt", str(back))
    assert code == 0, err
    assert back.read_bytes() == source.read_bytes()

    result = subprocess.run(
        [str(aws.__globals__["AWS"]), "--endpoint-url", endpoint, "s3", "ls", f"s3://{bucket}/"],
        env=_env(account), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "PRE dir/" in result.stdout
    result = subprocess.run(
        [str(aws.__globals__["AWS"]), "--endpoint-url", endpoint, "s3", "ls"],
        env=_env(account), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert bucket in result.stdout

    code, _, err = aws(endpoint, account, "s3", "rm", f"s3://{bucket}/dir/hello.txt")
    assert code == 0, err
    code, out, err = aws(endpoint, account, "s3api", "list-objects-v2", "--bucket", bucket)
    assert code == 0, err
    assert not (out or {}).get("Contents")
    code, _, err = aws(endpoint, account, "s3", "rb", f"s3://{bucket}")
    assert code == 0, err


def _env(account):
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": account, "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_DEFAULT_REGION": REGION, "AWS_MAX_ATTEMPTS": "1",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true"})
    return env


def test_boto3_put_get_list_with_default_checksums(endpoint, account):
    s3 = s3_client(endpoint, account)
    bucket = f"boto-{account}"
    s3.create_bucket(Bucket=bucket)
    # boto3 1.44 sends PutObject aws-chunked with a CRC32 trailer by default.
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"x" * 100_000, ContentType="text/plain",
                  Metadata={"k": "v"})
    got = s3.get_object(Bucket=bucket, Key="a/b.txt")
    assert got["Body"].read() == b"x" * 100_000
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"k": "v"}
    ranged = s3.get_object(Bucket=bucket, Key="a/b.txt", Range="bytes=0-9")
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert ranged["Body"].read() == b"x" * 10
    paginator = s3.get_paginator("list_objects_v2")
    keys = [o["Key"] for page in paginator.paginate(Bucket=bucket) for o in page.get("Contents", [])]
    assert keys == ["a/b.txt"]
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="missing")
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket=f"absent-{account}")


def test_sts_get_caller_identity_with_the_cli(endpoint, account):
    code, out, err = aws(endpoint, account, "sts", "get-caller-identity")
    assert code == 0, err
    assert out == {"UserId": account, "Account": account, "Arn": f"arn:aws:iam::{account}:root"}


def test_unserved_iam_is_a_readable_error(endpoint, account):
    code, _, err = aws(endpoint, account, "iam", "list-roles")
    assert code in (254, 255), (code, err)
    assert "Sluice does not serve the service 'iam'" in err, err
