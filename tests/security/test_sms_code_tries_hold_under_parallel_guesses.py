"""Issue 11, item 4: parallel guesses of one SMS (or email) code are checked at most 5
times, the code's limit, whoever sends them (login, phone confirmation, recipients and
submitters share this code engine)."""

import pytest

from sealbox.twofactor import services
from sealbox.twofactor.models import SMSCode
from sealbox.twofactor.services import CodeResult
from tests.security.in_parallel import in_parallel
from tests.twofactor.conftest import sms_outbox  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_parallel_wrong_codes_are_checked_five_times(sms_outbox, clock):  # noqa: F811
    services.send_code(
        binding="grant:1",
        phone="+15145550100",
        language="en",
        account_key="grant:abc",
        ip="198.51.100.1",
        purpose="message",
    )
    right = sms_outbox.last_code()
    wrong = [f"{n:06d}" for n in range(20) if f"{n:06d}" != right][:19] + ["999999"]
    results = in_parallel(20, lambda n: services.check_code("grant:1", wrong[n]))
    assert results.count(CodeResult.WRONG) == services.MAX_CODE_FAILURES - 1
    assert results.count(CodeResult.WRONG_LAST_TRY) == 1
    assert results.count(CodeResult.EXHAUSTED) == 20 - services.MAX_CODE_FAILURES
    assert SMSCode.objects.get().failures == services.MAX_CODE_FAILURES
    assert services.check_code("grant:1", right) is CodeResult.EXHAUSTED
