"""S3 and STS with the AWS CLI v1 and boto3, as a new user would try them."""
import os
import subprocess
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

from conftest import REGION
from test_aws_cli import AWS, aws
from test_strict_auth import KEY, SECRET, strict  # noqa: F401 (a fixture)


def s3_client(endpoint, account):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=account,
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def cli(endpoint, account, *args):
    """Runs `aws --endpoint-url ... ARGS` as `account`; returns (code, stdout, stderr)."""
    result = subprocess.run([str(AWS), "--endpoint-url", endpoint, *args],
                            env=_env(account), capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


def _env(account):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": account, "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_DEFAULT_REGION": REGION, "AWS_MAX_ATTEMPTS": "1",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true"})
    return env


def test_cli_s3_mb_cp_ls_rm(endpoint, account, tmp_path):
    bucket = f"cli-{account}"
    code, out, err = cli(endpoint, account, "s3", "mb", f"s3://{bucket}")
    assert code == 0, err
    assert f"make_bucket: {bucket}" in out
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello from the cli\n" * 1000)
    code, _, err = cli(endpoint, account, "s3", "cp", str(source), f"s3://{bucket}/dir/hello.txt")
    assert code == 0, err
    back = tmp_path / "back.txt"
    code, _, err = cli(endpoint, account, "s3", "cp", f"s3://{bucket}/dir/hello.txt", str(back))
    assert code == 0, err
    assert back.read_bytes() == source.read_bytes()

    code, out, err = cli(endpoint, account, "s3", "ls", f"s3://{bucket}/")
    assert code == 0, err
    assert "PRE dir/" in out
    code, out, err = cli(endpoint, account, "s3", "ls", f"s3://{bucket}/dir/")
    assert code == 0, err
    assert "19000 hello.txt" in out
    code, out, err = cli(endpoint, account, "s3", "ls")
    assert code == 0, err
    assert bucket in out

    code, _, err = cli(endpoint, account, "s3", "rm", f"s3://{bucket}/dir/hello.txt")
    assert code == 0, err
    code, out, err = aws(endpoint, account, "s3api", "list-objects-v2", "--bucket", bucket)
    assert code == 0, err
    assert not (out or {}).get("Contents")
    code, _, err = cli(endpoint, account, "s3", "rb", f"s3://{bucket}")
    assert code == 0, err


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


def _s3_as(endpoint, key, secret, **config):
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key,
                        aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}, **config))


def _fetch(url, method="GET", data=None):
    # urllib would add a form Content-Type to a body, which a presigned URL does not sign.
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": ""})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_presigned_urls_in_both_forms_are_verified_in_strict_mode(strict):
    s3 = _s3_as(strict.endpoint, KEY, SECRET)
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="a key/ünï.txt", Body=b"presigned body")
    # boto3's default for S3 presigning is still SigV2 (AWSAccessKeyId/Signature/Expires).
    v2 = s3.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "a key/ünï.txt"})
    assert "AWSAccessKeyId=" in v2
    assert _fetch(v2) == (200, b"presigned body")
    v4 = _s3_as(strict.endpoint, KEY, SECRET, signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": "presigned", "Key": "a key/ünï.txt"})
    assert "X-Amz-Signature=" in v4
    assert _fetch(v4) == (200, b"presigned body")
    # A presigned PUT uploads without any credentials on the client side.
    put = s3.generate_presigned_url("put_object", Params={"Bucket": "presigned", "Key": "uploaded"})
    status, _ = _fetch(put, "PUT", b"from curl")
    assert status == 200
    assert s3.get_object(Bucket="presigned", Key="uploaded")["Body"].read() == b"from curl"

    forged = _s3_as(strict.endpoint, KEY, "wrong").generate_presigned_url(
        "get_object", Params={"Bucket": "presigned", "Key": "a key/ünï.txt"})
    status, body = _fetch(forged)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body, body
    expired = s3.generate_presigned_url(
        "get_object", Params={"Bucket": "presigned", "Key": "a key/ünï.txt"}, ExpiresIn=-10)
    status, body = _fetch(expired)
    assert status == 403 and b"Request has expired" in body, body


def test_boto3_multipart_upload_file_and_download_file(endpoint, account, tmp_path):
    from boto3.s3.transfer import TransferConfig
    s3 = s3_client(endpoint, account)
    bucket = f"transfer-{account}"
    s3.create_bucket(Bucket=bucket)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(13 * 1024 * 1024))
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(source), bucket, "big.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == source.stat().st_size
    assert head["ETag"].endswith('-3"'), head["ETag"]
    target = tmp_path / "back.bin"
    s3.download_file(bucket, "big.bin", str(target), Config=config)
    assert target.read_bytes() == source.read_bytes()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_cli_cp_over_the_multipart_threshold(endpoint, account, tmp_path):
    bucket = f"cli-big-{account}"
    code, _, err = cli(endpoint, account, "s3", "mb", f"s3://{bucket}")
    assert code == 0, err
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(9 * 1024 * 1024))  # over the CLI's 8 MiB threshold
    code, _, err = cli(endpoint, account, "s3", "cp", str(source), f"s3://{bucket}/big.bin")
    assert code == 0, err
    back = tmp_path / "back.bin"
    code, _, err = cli(endpoint, account, "s3", "cp", f"s3://{bucket}/big.bin", str(back))
    assert code == 0, err
    assert back.read_bytes() == source.read_bytes()


def test_cli_sync_both_ways_and_delete(endpoint, account, tmp_path):
    bucket = f"sync-{account}"
    code, _, err = cli(endpoint, account, "s3", "mb", f"s3://{bucket}")
    assert code == 0, err
    source = tmp_path / "source"
    (source / "nested" / "deeper").mkdir(parents=True)
    files = {"a.txt": b"alpha\n", "nested/b.log": b"bravo\n" * 500,
             "nested/deeper/c.bin": os.urandom(70_000)}
    for name, data in files.items():
        (source / name).write_bytes(data)
    code, out, err = cli(endpoint, account, "s3", "sync", str(source), f"s3://{bucket}/tree")
    assert code == 0, err
    assert out.count("upload:") == 3, out
    # Nothing changed: a second sync has nothing to do (sizes and times compare equal).
    code, out, err = cli(endpoint, account, "s3", "sync", str(source), f"s3://{bucket}/tree")
    assert code == 0, err
    assert "upload:" not in out, out

    back = tmp_path / "back"
    code, out, err = cli(endpoint, account, "s3", "sync", f"s3://{bucket}/tree", str(back))
    assert code == 0, err
    for name, data in files.items():
        assert (back / name).read_bytes() == data, name

    (source / "a.txt").unlink()
    code, out, err = cli(endpoint, account, "s3", "sync", "--delete", str(source),
                         f"s3://{bucket}/tree")
    assert code == 0, err
    assert f"delete: s3://{bucket}/tree/a.txt" in out, out
    listed = s3_client(endpoint, account).list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["tree/nested/b.log", "tree/nested/deeper/c.bin"]


def test_cli_presign_fetched_with_curl(endpoint, account):
    bucket = f"presign-{account}"
    s3 = s3_client(endpoint, account)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n1,2\n")
    code, out, err = cli(endpoint, account, "s3", "presign", f"s3://{bucket}/report.csv",
                         "--expires-in", "300")
    assert code == 0, err
    url = out.strip()
    fetched = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", url],
                             capture_output=True, timeout=30)
    body, _, status = fetched.stdout.rpartition(b"\n")
    assert status == b"200", fetched.stdout
    assert body == b"a,b\n1,2\n"


def test_another_account_needs_the_bucket_policy(endpoint, account):
    import json

    owner = s3_client(endpoint, account)
    bucket = f"shared-{account}"
    owner.create_bucket(Bucket=bucket)
    owner.put_object(Bucket=bucket, Key="k", Body=b"owned")
    stranger_account = f"{(int(account) + 1) % 10**12:012d}"
    stranger = s3_client(endpoint, stranger_account)
    with pytest.raises(stranger.exceptions.ClientError) as refused:
        stranger.get_object(Bucket=bucket, Key="k")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    owner.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": stranger_account},
                       "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }))
    assert stranger.get_object(Bucket=bucket, Key="k")["Body"].read() == b"owned"
    with pytest.raises(stranger.exceptions.ClientError) as still_refused:
        stranger.put_object(Bucket=bucket, Key="k", Body=b"overwritten")
    assert still_refused.value.response["Error"]["Code"] == "AccessDenied"


def test_sts_refusal_before_the_body_is_xml_the_cli_can_read(strict):
    code, out, err = cli(strict.endpoint, "AKIDUNKNOWNKEY", "sts", "get-caller-identity")
    assert code != 0, out
    assert "InvalidClientTokenId" in err, err
    assert "The security token included in the request is invalid" in err, err
    assert "Unable to parse" not in err, err
