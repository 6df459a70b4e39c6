"""No secret planted in a record's fields or body reaches its file or any git object."""

from __future__ import annotations

import subprocess

from .conftest import ALICE, OBJ

SECRETS = {
    "password": "hunter2-Very-Secret",
    "token": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    "openai": "sk-proj-ABCdef123456GHIjkl789",
    "url_password": "s3cr3tpassw0rd",
    "pem": "MIIEowIBAAKCAQEAsecretkeymaterial",
    "secret_data": "c3VwZXJzZWNyZXQ=",
    "bearer": "abcDEF123456ghiJKL",
}


def test_secrets_in_fields_and_body_never_reach_files_or_git(store, repo):
    body = (f"Connected with postgres://app:{SECRETS['url_password']}@db:5432/todo\n"
            f"export API_TOKEN={SECRETS['token']}\n"
            f"Authorization: Bearer {SECRETS['bearer']}\n"
            f"-----BEGIN RSA PRIVATE KEY-----\n{SECRETS['pem']}\n-----END RSA PRIVATE KEY-----\n")
    rec = store.record(
        "execution", actor=ALICE, title=f"rotated key {SECRETS['aws']}", body=body, object=OBJ,
        pre_metrics={"db_password": SECRETS["password"], "p95_ms": 120},
        post_metrics={"note": f"token={SECRETS['openai']}"},
        data={"env": [{"name": "JWT", "value": SECRETS["jwt"]}],
              "secret": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                         "data": {"pw": SECRETS["secret_data"]}},
              "replicas": 3})
    text = rec.path.read_text()
    for name, value in SECRETS.items():
        assert value not in text, name
    assert text.count("<redacted>") >= 8
    assert "replicas: 3" in text and "p95_ms: 120" in text  # plain values stay
    # every object git holds: blobs, trees, commits (messages, authors)
    dump = subprocess.run(["git", "cat-file", "--batch-all-objects", "--batch"],
                          cwd=repo.working_tree_dir, capture_output=True, check=True).stdout
    assert rec.id.encode() in dump  # the dump does hold the record
    for name, value in SECRETS.items():
        assert value.encode() not in dump, name
