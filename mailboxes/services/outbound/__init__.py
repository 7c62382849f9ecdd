"""Outbound mail, by stage.

* ``accept``: a send or reply in the request, every check that can refuse it, stored as
  ``pending_scan`` with the scan enqueued after commit;
* ``schedule``: edits of a scheduled email before it leaves;
* ``pipeline``: the tasks' side, scan, route (the oversight policy decides) and deliver;
* ``message``: the MIME message as every recipient sees it;
* ``provider``: handing it to the configured mailer, and what the mailer's errors mean.
"""
