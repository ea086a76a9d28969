"""Signs each request of a JSON-lines file with botocore's SigV4Auth at the
time gateprobe signed it, and compares the Authorization headers.

Input lines: {"method", "url", "headers": [[name, value], ...], "body",
"amz_date", "authorization", "region", "service", "access_key_id",
"secret_access_key", "session_token"}. Prints "checked N mismatched M", then
each mismatch; exit status 1 when any differ.
"""
import datetime
import json
import sys

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_now = [None]


class _FixedClock(datetime.datetime):
    """botocore reads the signing time from the clock; pin it per request."""

    @classmethod
    def utcnow(cls):
        return _now[0]

    @classmethod
    def now(cls, tz=None):
        return _now[0].replace(tzinfo=tz) if tz else _now[0]


botocore.auth.datetime.datetime = _FixedClock


def main(path):
    checked = mismatched = 0
    problems = []
    with open(path) as lines:
        for line in lines:
            case = json.loads(line)
            _now[0] = _FixedClock.strptime(case["amz_date"], "%Y%m%dT%H%M%SZ")
            credentials = Credentials(
                case["access_key_id"], case["secret_access_key"], case.get("session_token")
            )
            request = AWSRequest(
                method=case["method"],
                url=case["url"],
                data=case["body"].encode(),
                headers=dict(case["headers"]),
            )
            SigV4Auth(credentials, case["service"], case["region"]).add_auth(request)
            ours = case["authorization"]
            theirs = request.headers["Authorization"]
            checked += 1
            if ours != theirs:
                mismatched += 1
                problems.append(f"{case['method']} {case['url']}\n  ours   {ours}\n  boto   {theirs}")
    print(f"checked {checked} mismatched {mismatched} botocore {botocore.__version__}")
    for problem in problems[:5]:
        print(problem)
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
