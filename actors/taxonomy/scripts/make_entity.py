"""Script actor `create_entities`: turn a distinct skill name into an entity's display form.

Pure and deterministic. The skill name arrives normalised (lower case, see clean_skill); the
entity gets the label people expect to read ("PostgreSQL", "CI/CD", "Microsoft Excel") and a
URL-safe slug. Writing the entity row is the job of the on_complete SQL, not of this script.

Input:  {"name": "microsoft excel"}
Output: {"label": "Microsoft Excel", "slug": "microsoft-excel"}
"""

from __future__ import annotations

import re
import sys
from typing import Any

from turing_pg.actors.taxonomy.scripts import run

# Words whose usual spelling is neither Title Case nor all caps.
SPELLINGS = {
    "javascript": "JavaScript", "typescript": "TypeScript", "postgresql": "PostgreSQL",
    "mysql": "MySQL", "mongodb": "MongoDB", "github": "GitHub", "gitlab": "GitLab",
    "graphql": "GraphQL", "node.js": "Node.js", "react.js": "React.js", "next.js": "Next.js",
    "vue.js": "Vue.js", "jquery": "jQuery", "pytorch": "PyTorch", "tensorflow": "TensorFlow",
    "numpy": "NumPy", "pyspark": "PySpark", "fastapi": "FastAPI", "bigquery": "BigQuery",
    "netsuite": "NetSuite", "hubspot": "HubSpot", "wordpress": "WordPress", "powerbi": "PowerBI",
    "mlops": "MLOps", "devops": "DevOps", "argocd": "ArgoCD", "swiftui": "SwiftUI",
    "xcode": "Xcode", "macos": "macOS", "ios": "iOS", ".net": ".NET", "asp.net": "ASP.NET",
    "okrs": "OKRs", "llms": "LLMs", "apis": "APIs", "s/4hana": "S/4HANA", "dbt": "dbt",
    "scikit": "scikit", "b2b": "B2B", "ga4": "GA4", "i2c/spi": "I2C/SPI",
}  # fmt: skip
# Short words that are acronyms when they stand alone ("sql", "aws", "seo").
ACRONYMS = frozenset({
    "sql", "aws", "gcp", "seo", "sem", "crm", "erp", "etl", "sap", "api", "css", "html", "php",
    "tdd", "nlp", "ml", "ai", "iam", "vpn", "kpi", "cpa", "cfa", "pmp", "psm", "itil", "ccna",
    "cissp", "siem", "hris", "ats", "wms", "rtos", "abap", "bpmn", "dax", "ssis", "ifrs",
    "gaap", "ci/cd", "tcp/ip", "a/b", "fi/co", "mm", "xd", "bi", "ui", "ux", "sdk", "mvc",
    "iso", "vba", "arm", "3d", "c#", "c++", "r", "c", "aml/kyc", "gdpr", "eks", "t", "ii",
})  # fmt: skip
LOWER = frozenset({"and", "as", "of", "in", "to", "for", "the", "&"})


def label_for(name: str) -> str:
    words = name.split()
    out = []
    for i, word in enumerate(words):
        if word in SPELLINGS:
            out.append(SPELLINGS[word])
        elif word in ACRONYMS:
            out.append(word.upper())
        elif word in LOWER and i > 0:
            out.append(word)
        else:
            out.append(word[:1].upper() + word[1:])
    return " ".join(out)


def slug_for(name: str) -> str:
    slug = name.replace("#", " sharp").replace("++", "pp").replace("&", " and ")
    return re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-") or "skill"


def compute(data: dict[str, Any]) -> dict[str, Any]:
    name = str(data["name"]).strip()
    if not name:
        raise ValueError("empty skill name")
    return {"label": label_for(name), "slug": slug_for(name)}


if __name__ == "__main__":
    sys.exit(run(compute))
