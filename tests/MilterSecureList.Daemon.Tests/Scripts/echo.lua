-- echo.lua: several messages over one connection against the echo handler, the Postfix way
-- (EOM, then ABORT, then the next MAIL). Steps the milter switched off in negotiation are skipped,
-- as an MTA would. Needs -D MILTER=unix:/path|inet:PORT@HOST and -D ECHO_RCPTS=N.
local conn = mt.connect(MILTER, 40, 0.25)
assert(conn ~= nil, "cannot connect to " .. MILTER)
assert(mt.negotiate(conn, nil, nil, nil) == nil, "negotiation failed")
assert(mt.test_option(conn, SMFIP_NR_BODY), "milter did not ask for no-reply on BODY")
assert(mt.test_action(conn, SMFIF_CHGBODY), "milter did not ask for CHGBODY")
mt.macro(conn, SMFIC_CONNECT, "j", "mx.test")
if not mt.test_option(conn, SMFIP_NOCONNECT) then
  assert(mt.conninfo(conn, "client.example", "192.0.2.10") == nil)
end
local n_rcpts = tonumber(ECHO_RCPTS or "3")
for n = 1, 3 do
  mt.macro(conn, SMFIC_MAIL, "{mail_addr}", "sender@example.com")
  assert(mt.mailfrom(conn, "<sender@example.com>") == nil, "mailfrom")
  mt.macro(conn, SMFIC_RCPT, "i", "QID" .. n)
  assert(mt.rcptto(conn, "<list" .. n .. "@example.com>") == nil, "rcptto")
  assert(mt.rcptto(conn, "<other@example.com>") == nil, "rcptto 2")
  if not mt.test_option(conn, SMFIP_NOHDRS) then
    assert(mt.header(conn, "Subject", "message " .. n) == nil)
  end
  if not mt.test_option(conn, SMFIP_NOEOH) then
    assert(mt.eoh(conn) == nil)
  end
  assert(mt.bodystring(conn, "body of message " .. n .. "\r\n") == nil, "body")
  mt.macro(conn, string.byte("E"), "i", "QID" .. n)
  assert(mt.eom(conn) == nil, "eom")
  assert(mt.getreply(conn) == SMFIR_CONTINUE, "final reply not CONTINUE")
  assert(mt.eom_check(conn, MT_RCPTDELETE, "<list" .. n .. "@example.com>"), "no DELRCPT of the first recipient")
  assert(not mt.eom_check(conn, MT_RCPTDELETE, "<other@example.com>"), "DELRCPT of the second recipient")
  assert(mt.eom_check(conn, MT_RCPTADD, "<echo1@echo.invalid>"), "no ADDRCPT echo1")
  assert(mt.eom_check(conn, MT_RCPTADD, "<echo" .. n_rcpts .. "@echo.invalid>"), "no ADDRCPT of the last echo recipient")
  assert(not mt.eom_check(conn, MT_RCPTADD, "<echo" .. (n_rcpts + 1) .. "@echo.invalid>"), "too many ADDRCPT")
  assert(mt.eom_check(conn, MT_BODYCHANGE, "body of message " .. n .. "\r\n"), "body not echoed")
  assert(mt.abort(conn) == nil, "abort")
end
-- an ABORT in the middle of a message, then one more message
assert(mt.mailfrom(conn, "<sender@example.com>") == nil)
assert(mt.rcptto(conn, "<aborted@example.com>") == nil)
assert(mt.abort(conn) == nil)
assert(mt.mailfrom(conn, "<sender@example.com>") == nil)
assert(mt.rcptto(conn, "<last@example.com>") == nil)
assert(mt.bodystring(conn, "last\r\n") == nil)
assert(mt.eom(conn) == nil)
assert(mt.getreply(conn) == SMFIR_CONTINUE)
assert(mt.eom_check(conn, MT_RCPTDELETE, "<last@example.com>"), "DELRCPT after mid-message ABORT")
assert(mt.eom_check(conn, MT_BODYCHANGE, "last\r\n"), "body after mid-message ABORT")
mt.disconnect(conn)
mt.echo("echo.lua: OK")
