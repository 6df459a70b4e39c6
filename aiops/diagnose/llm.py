"""Optional: let an OpenAI-compatible model phrase an answer from the findings.

Configured only through the environment (AIOPS_LLM_URL, AIOPS_LLM_MODEL,
AIOPS_LLM_API_KEY). The model sees the deterministic answer and the findings,
all passed through the redactor, and is told to add nothing. Any failure falls
back to the deterministic text: no endpoint loses nothing.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from aiops.redact import mask_text

if TYPE_CHECKING:
    from aiops.diagnose.ask import Answer

SYSTEM = ("You explain Kubernetes diagnosis results to an SRE. Use ONLY the findings "
          "given. Do not invent causes, objects or commands. Be brief.")


def llm_configured() -> bool:
    return bool(os.environ.get("AIOPS_LLM_URL"))


def build_request(ans: Answer) -> dict:
    """The chat request body; everything in it is redacted."""
    findings = ans.diagnosis.to_dicts() if ans.diagnosis else []
    for f in findings:  # drop patches: values of env vars could sit in them
        if f["remediation"].get("action"):
            f["remediation"]["action"] = {k: f["remediation"]["action"][k]
                                          for k in ("kind", "target", "tier", "description")}
    payload = json.dumps({"question": ans.question, "answer": ans.text,
                          "findings": findings}, default=str)
    return {
        "model": os.environ.get("AIOPS_LLM_MODEL", "gpt-4o-mini"),
        "temperature": 0,
        "messages": [{"role": "system", "content": SYSTEM},
                     {"role": "user", "content": mask_text(payload)}],
    }


def explain_answer(ans: Answer, timeout: float = 20.0) -> str | None:
    url = os.environ.get("AIOPS_LLM_URL", "").rstrip("/")
    if not url:
        return None
    if not url.endswith("/chat/completions"):
        url += "/chat/completions"
    req = urllib.request.Request(
        url, data=json.dumps(build_request(ans)).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {key}"}
                    if (key := os.environ.get("AIOPS_LLM_API_KEY")) else {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = json.loads(resp.read())
        return mask_text(body["choices"][0]["message"]["content"].strip())
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError):
        return None
