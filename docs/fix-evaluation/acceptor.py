#!/usr/bin/env python3
"""Minimal QuickFIX (C++ engine, Python binding) FIX 4.4 acceptor used as the
independent counterparty for the Rust FIX engine evaluation.

Behaviour (per NewOrderSingle 35=D):
  Symbol REJ          -> ExecutionReport Rejected (150=8/39=8)
  Symbol REST         -> ExecutionReport New only (order rests; cancel it with 35=F)
  OrderQty > 100      -> New, then a partial fill of 100 (rest of the order rests)
  otherwise           -> New, then Fill
35=F on an open order -> ExecutionReport Canceled (150=4); unknown -> OrderCancelReject 35=9
35=H                  -> ExecutionReport OrderStatus (150=I)
35=AF                 -> one 150=I report per open order
Env:
  PORT (default 9880)
  SEND_WHILE_DOWN=1   -> 1 s after the initiator logs out, send an unsolicited
                          ExecutionReport (Done for day) for each open order; the
                          session is down, so QuickFIX only stores it (seq consumed)
                          and it has to be recovered by the initiator's ResendRequest.
  REQUIRE_PASSWORD=1  -> refuse a Logon without 553=user/554=secret (RejectLogon)
"""
import os
import sys
import threading
import time

import quickfix as fix
import quickfix44 as fix44

BASE = "/tmp/fixeval"
PORT = int(os.environ.get("PORT", "9880"))
DD = os.environ.get("DD", "/tmp/fixeval/venv/share/quickfix/FIX44.xml")
TAG = os.environ.get("TAG", "run")

CFG = f"""[DEFAULT]
ConnectionType=acceptor
SocketAcceptHost=127.0.0.1
SocketAcceptPort={PORT}
FileStorePath={BASE}/qf_store_{TAG}
FileLogPath={BASE}/qf_log_{TAG}
StartTime=00:00:00
EndTime=00:00:00
UseDataDictionary=Y
DataDictionary={DD}
ResetOnLogon=N
ResetOnLogout=N
ResetOnDisconnect=N
ValidateUserDefinedFields=N
AllowUnknownMsgFields=Y

[SESSION]
BeginString=FIX.4.4
SenderCompID=QFACC
TargetCompID=VIGIL
HeartBtInt=30
"""


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def show(msg):
    return msg.toString().replace("\x01", "|")


class App(fix.Application):
    def __init__(self):
        super().__init__()
        self.orders = {}  # ClOrdID -> dict(symbol, side, qty, cum, price)
        self.next_id = 1
        self.session = None

    # -- session callbacks -------------------------------------------------
    def onCreate(self, sid):
        self.session = sid
        log("onCreate", sid.toString())

    def onLogon(self, sid):
        log("onLogon", sid.toString())

    def onLogout(self, sid):
        log("onLogout", sid.toString())
        if os.environ.get("SEND_WHILE_DOWN") == "1" and self.orders:
            threading.Thread(target=self._send_while_down, args=(sid,), daemon=True).start()

    def _send_while_down(self, sid):
        time.sleep(1.0)
        for clid, o in list(self.orders.items()):
            if o["cum"] < o["qty"]:
                log("SEND_WHILE_DOWN: unsolicited DoneForDay for", clid)
                self.report(sid, clid, o, "3", "3", 0, 0.0, text="done for day while you were away")

    def toAdmin(self, msg, sid):
        log("OUT admin", show(msg))

    def fromAdmin(self, msg, sid):
        log("IN  admin", show(msg))
        mt = fix.MsgType()
        msg.getHeader().getField(mt)
        if mt.getValue() == fix.MsgType_Logon:
            user = msg.getField(553) if msg.isSetField(553) else None
            pw = msg.getField(554) if msg.isSetField(554) else None
            log(f"LOGON credentials: Username(553)={user!r} Password(554)={'***' if pw else None}")
            if os.environ.get("REQUIRE_PASSWORD") == "1" and (user != "user" or pw != "secret"):
                raise fix.RejectLogon("bad credentials")

    def toApp(self, msg, sid):
        log("OUT app  ", show(msg))

    def fromApp(self, msg, sid):
        log("IN  app  ", show(msg))
        mt = fix.MsgType()
        msg.getHeader().getField(mt)
        t = mt.getValue()
        possdup = msg.getHeader().isSetField(43) and msg.getHeader().getField(43) == "Y"
        if possdup:
            log("  (PossDupFlag=Y on inbound app message)")
        if t == fix.MsgType_NewOrderSingle:
            self.on_nos(msg, sid)
        elif t == fix.MsgType_OrderCancelRequest:
            self.on_cancel(msg, sid)
        elif t == fix.MsgType_OrderStatusRequest:
            clid = msg.getField(11)
            o = self.orders.get(clid)
            if o:
                self.report(sid, clid, o, "I", self.status(o), 0, 0.0)
        elif t == "AF":
            mid = msg.getField(584)
            for clid, o in self.orders.items():
                self.report(sid, clid, o, "I", self.status(o), 0, 0.0, extra={584: mid})
        else:
            raise fix.UnsupportedMessageType()

    # -- order handling ----------------------------------------------------
    @staticmethod
    def status(o):
        if o.get("canceled"):
            return "4"
        if o["cum"] >= o["qty"]:
            return "2"
        return "1" if o["cum"] > 0 else "0"

    def on_nos(self, msg, sid):
        clid = msg.getField(11)
        sym = msg.getField(55)
        side = msg.getField(54)
        qty = float(msg.getField(38))
        price = float(msg.getField(44)) if msg.isSetField(44) else 100.0
        o = dict(symbol=sym, side=side, qty=qty, cum=0.0, price=price, oid=f"O{self.next_id}")
        self.next_id += 1
        if sym == "REJ":
            self.report(sid, clid, o, "8", "8", 0, 0.0, text="symbol REJ is rejected")
            return
        self.orders[clid] = o
        self.report(sid, clid, o, "0", "0", 0, 0.0)
        if sym == "REST":
            return
        fill = 100.0 if qty > 100 else qty
        o["cum"] += fill
        self.report(sid, clid, o, "F", self.status(o), fill, price)

    def on_cancel(self, msg, sid):
        clid = msg.getField(11)
        orig = msg.getField(41)
        o = self.orders.get(orig)
        if o is None or o.get("canceled") or o["cum"] >= o["qty"]:
            r = fix44.OrderCancelReject()
            r.setField(fix.OrderID(o["oid"] if o else "NONE"))
            r.setField(fix.ClOrdID(clid))
            r.setField(fix.OrigClOrdID(orig))
            r.setField(fix.OrdStatus(self.status(o) if o else "8"))
            r.setField(fix.CxlRejResponseTo("1"))
            r.setField(fix.CxlRejReason(1))
            r.setField(fix.Text("unknown or closed order"))
            fix.Session.sendToTarget(r, sid)
            return
        o["canceled"] = True
        self.report(sid, clid, o, "4", "4", 0, 0.0, orig=orig)

    def report(self, sid, clid, o, exec_type, ord_status, last_qty, last_px, text=None, orig=None, extra=None):
        er = fix44.ExecutionReport()
        er.setField(fix.OrderID(o["oid"]))
        er.setField(fix.ExecID(f"E{time.time_ns()}"))
        er.setField(fix.ExecType(exec_type))
        er.setField(fix.OrdStatus(ord_status))
        er.setField(fix.ClOrdID(clid))
        if orig:
            er.setField(fix.OrigClOrdID(orig))
        er.setField(fix.Symbol(o["symbol"]))
        er.setField(fix.Side(o["side"]))
        er.setField(fix.OrderQty(o["qty"]))
        er.setField(fix.Price(o["price"]))
        er.setField(fix.LastQty(last_qty))
        er.setField(fix.LastPx(last_px))
        leaves = 0.0 if ord_status in ("2", "4", "8", "3") else o["qty"] - o["cum"]
        er.setField(fix.LeavesQty(leaves))
        er.setField(fix.CumQty(o["cum"]))
        er.setField(fix.AvgPx(o["price"] if o["cum"] else 0.0))
        if text:
            er.setField(fix.Text(text))
        for k, v in (extra or {}).items():
            er.setField(k, v)
        fix.Session.sendToTarget(er, sid)


def main():
    os.makedirs(f"{BASE}/qf_store_{TAG}", exist_ok=True)
    os.makedirs(f"{BASE}/qf_log_{TAG}", exist_ok=True)
    cfg_path = f"{BASE}/acceptor_{TAG}.cfg"
    with open(cfg_path, "w") as f:
        f.write(CFG)
    settings = fix.SessionSettings(cfg_path)
    app = App()
    acc = fix.SocketAcceptor(app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))
    acc.start()
    log(f"QuickFIX acceptor listening on 127.0.0.1:{PORT}")
    stop = float(os.environ.get("RUN_SECONDS", "3600"))
    t0 = time.time()
    try:
        while time.time() - t0 < stop and not os.path.exists(f"{BASE}/acceptor.stop"):
            time.sleep(0.5)
    finally:
        acc.stop()
        log("acceptor stopped")


if __name__ == "__main__":
    sys.exit(main())
