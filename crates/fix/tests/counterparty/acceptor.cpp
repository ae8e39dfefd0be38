// The independent FIX 4.4 counterparty (acceptor) that vigil's FIX venue is tested against.
// Built on Debian's QuickFIX 1.15.1 (libquickfix-dev):
//
//   g++ -std=c++17 -O1 -o acceptor acceptor.cpp -lquickfix -lpthread
//
// See README.md beside this file for the command line, the behaviour and the journal.

// QuickFIX 1.15.1's headers carry dynamic exception specifications (`throw( X )`), which
// C++17 removed. Every `throw(` in those headers is such a specification (their throw
// statements are all `throw X(...)`), so they are erased by a function-like macro while the
// headers are read. The standard headers they use are included first, so the macro never
// reaches them. Nothing else is needed: the library was built with std::auto_ptr (SmartPtr,
// still in libstdc++'s C++17 mode) and std::shared_ptr, the headers' defaults.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <queue>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define throw(...)
#include <quickfix/Application.h>
#include <quickfix/Exceptions.h>
#include <quickfix/FileLog.h>
#include <quickfix/FileStore.h>
#include <quickfix/Group.h>
#include <quickfix/Message.h>
#include <quickfix/Session.h>
#include <quickfix/SessionID.h>
#include <quickfix/SessionSettings.h>
#include <quickfix/SocketAcceptor.h>
#undef throw

namespace {

// ---------------------------------------------------------------------------------------------
// Exact decimals: integers scaled by 1e8, in __int128.

typedef __int128 i128;
const i128 SCALE = 100000000;  // 1e8

struct Dec {
  i128 v = 0;
  static Dec raw(i128 x) { Dec d; d.v = x; return d; }
};

std::optional<Dec> parseDec(const std::string& s) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) { neg = s[i] == '-'; ++i; }
  i128 ip = 0, fp = 0;
  int fd = 0;
  bool digits = false, dot = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') { if (dot) return std::nullopt; dot = true; continue; }
    if (c < '0' || c > '9') return std::nullopt;
    digits = true;
    if (!dot) {
      ip = ip * 10 + (c - '0');
      if (ip > (i128)1000000000000000000LL) return std::nullopt;
    } else if (fd < 8) {
      fp = fp * 10 + (c - '0');
      ++fd;
    } else if (c != '0') {
      return std::nullopt;  // more than 8 significant decimals: not exact here
    }
  }
  if (!digits) return std::nullopt;
  while (fd < 8) { fp *= 10; ++fd; }
  i128 v = ip * SCALE + fp;
  return Dec::raw(neg ? -v : v);
}

std::string i128str(i128 x) {
  if (x == 0) return "0";
  bool neg = x < 0;
  if (neg) x = -x;
  std::string r;
  while (x > 0) { r.push_back(char('0' + (int)(x % 10))); x /= 10; }
  if (neg) r.push_back('-');
  std::reverse(r.begin(), r.end());
  return r;
}

// "100", "1234.5", "-3.25", "0"
std::string fmtDec(Dec d) {
  i128 v = d.v;
  bool neg = v < 0;
  if (neg) v = -v;
  i128 ip = v / SCALE, fp = v % SCALE;
  std::string r = (neg ? "-" : "") + i128str(ip);
  if (fp != 0) {
    std::string f = i128str(fp);
    f = std::string(8 - f.size(), '0') + f;
    while (!f.empty() && f.back() == '0') f.pop_back();
    r += "." + f;
  }
  return r;
}

Dec add(Dec a, Dec b) { return Dec::raw(a.v + b.v); }
Dec sub(Dec a, Dec b) { return Dec::raw(a.v - b.v); }
Dec neg(Dec a) { return Dec::raw(-a.v); }
Dec absd(Dec a) { return Dec::raw(a.v < 0 ? -a.v : a.v); }
// Divide rounding half away from zero.
i128 divRound(i128 n, i128 d) {
  if (d < 0) { n = -n; d = -d; }
  i128 q = n / d, r = n % d;
  if (r < 0) r = -r;
  if (2 * r >= d) q += (n < 0 ? -1 : 1);
  return q;
}
// a*b is scaled 1e16: back to 1e8, exact whenever the product has <= 8 decimals.
Dec mul(Dec a, Dec b) { return Dec::raw(divRound(a.v * b.v, SCALE)); }

// ---------------------------------------------------------------------------------------------
// Times: nanoseconds since the epoch, UTC.

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// FIX UTCTimestamp "YYYYMMDD-HH:MM:SS[.s…]".
std::optional<int64_t> parseUtc(const std::string& s) {
  if (s.size() < 17 || s[8] != '-' || s[11] != ':' || s[14] != ':') return std::nullopt;
  auto num = [&](size_t pos, size_t len, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (!isdigit((unsigned char)s[i])) return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int Y, M, D, h, m, sec;
  if (!num(0, 4, Y) || !num(4, 2, M) || !num(6, 2, D) || !num(9, 2, h) || !num(12, 2, m) ||
      !num(15, 2, sec))
    return std::nullopt;
  int64_t frac = 0;
  if (s.size() > 17) {
    if (s[17] != '.') return std::nullopt;
    int digits = 0;
    for (size_t i = 18; i < s.size(); ++i) {
      if (!isdigit((unsigned char)s[i])) return std::nullopt;
      if (digits < 9) { frac = frac * 10 + (s[i] - '0'); ++digits; }
    }
    while (digits < 9) { frac *= 10; ++digits; }
  }
  struct tm t;
  memset(&t, 0, sizeof t);
  t.tm_year = Y - 1900; t.tm_mon = M - 1; t.tm_mday = D;
  t.tm_hour = h; t.tm_min = m; t.tm_sec = sec;
  time_t tt = timegm(&t);
  return (int64_t)tt * 1000000000LL + frac;
}

std::string fmtUtcMs(int64_t ns) {
  time_t secs = (time_t)(ns / 1000000000LL);
  int ms = (int)((ns % 1000000000LL) / 1000000LL);
  struct tm t;
  gmtime_r(&secs, &t);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d%02d%02d-%02d:%02d:%02d.%03d", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ms);
  return buf;
}

std::string todayUtc() {
  time_t now = time(nullptr);
  struct tm t;
  gmtime_r(&now, &t);
  char buf[48];
  snprintf(buf, sizeof buf, "%04d%02d%02d", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// JSON journal.

std::string jstr(const std::string& s) {
  std::string r = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': r += "\\\""; break;
      case '\\': r += "\\\\"; break;
      case '\n': r += "\\n"; break;
      case '\r': r += "\\r"; break;
      case '\t': r += "\\t"; break;
      default:
        if (c < 0x20) {
          char b[8];
          snprintf(b, sizeof b, "\\u%04x", c);
          r += b;
        } else {
          r.push_back((char)c);
        }
    }
  }
  return r + "\"";
}

// ---------------------------------------------------------------------------------------------
// Options and process-wide flags.

struct Options {
  int port = 0;
  std::string dir;
  std::string sender = "QFACC";
  std::string target = "VIGIL";
  std::string username;
  std::string passwordFile;
  std::string password;
  bool checkCredentials = false;
  Dec marketPrice = Dec::raw(100 * SCALE);
  Dec partialAbove;
  Dec commission;
  Dec cash = Dec::raw(100000 * SCALE);
  bool hold = false;
  bool noPositions = false;  // answer RequestForPositions with a BusinessMessageReject
  // --start-of-day SYMBOL=QTY (repeatable): a position held since before the session, at the
  // market price. PositionReports then give every position as two amounts, SOD (held at the
  // start) and TQ (traded since), as brokers that report them apart do.
  std::vector<std::pair<std::string, Dec>> startOfDay;
  std::string dict;  // optional FIX44.xml; none by default (Debian ships none)
  // Drop copy session (FIX.4.4, SenderCompID = sender, TargetCompID = dropCopyTarget); off when
  // empty. SIGHUP then books a trade "made by hand at the broker" (see README.md).
  std::string dropCopyTarget;
  std::string manualSymbol = "GOOG";
  Dec manualQty = Dec::raw(7 * SCALE);
  std::optional<Dec> manualPrice;  // --market-price when not given
};

std::atomic<bool> g_stop(false);
std::atomic<bool> g_release(false);
std::atomic<int> g_toggleHold(0);
std::atomic<int> g_manual(0);

extern "C" void onSignal(int sig) {
  if (sig == SIGTERM || sig == SIGINT) g_stop.store(true);
  else if (sig == SIGUSR1) g_release.store(true);
  else if (sig == SIGUSR2) g_toggleHold.fetch_add(1);
  else if (sig == SIGHUP) g_manual.fetch_add(1);
}

void say(const std::string& line) {
  fputs(line.c_str(), stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// A FileLog that never writes the Logon's Password (554) to disk.

std::string maskPassword(const std::string& s) {
  std::string r = s;
  size_t pos = 0;
  const std::string key = std::string(1, '\001') + "554=";
  while ((pos = r.find(key, pos)) != std::string::npos) {
    size_t start = pos + key.size();
    size_t end = r.find('\001', start);
    if (end == std::string::npos) end = r.size();
    r.replace(start, end - start, "***");
    pos = start;
  }
  return r;
}

class MaskingLog : public FIX::Log {
 public:
  explicit MaskingLog(FIX::Log* inner) : m_inner(inner) {}
  ~MaskingLog() override { delete m_inner; }
  void clear() override { m_inner->clear(); }
  void backup() override { m_inner->backup(); }
  void onIncoming(const std::string& s) override { m_inner->onIncoming(maskPassword(s)); }
  void onOutgoing(const std::string& s) override { m_inner->onOutgoing(maskPassword(s)); }
  void onEvent(const std::string& s) override { m_inner->onEvent(s); }

 private:
  FIX::Log* m_inner;
};

class MaskingLogFactory : public FIX::LogFactory {
 public:
  explicit MaskingLogFactory(const std::string& path) : m_path(path) {}
  FIX::Log* create() override { return new MaskingLog(new FIX::FileLog(m_path)); }
  FIX::Log* create(const FIX::SessionID& s) override {
    return new MaskingLog(new FIX::FileLog(m_path, s));
  }
  void destroy(FIX::Log* log) override { delete log; }

 private:
  std::string m_path;
};

// ---------------------------------------------------------------------------------------------
// The book.

struct Order {
  std::string clordid;
  std::string orderId;
  std::string symbol;
  std::string side;     // "1" buy, "2" sell
  std::string ordType;  // "1" market, "2" limit
  std::string account;
  Dec qty;
  std::optional<Dec> price;  // the limit price (44)
  Dec fillPx;                // what it fills at
  Dec cum;
  i128 notional = 0;  // sum of lastQty*lastPx, scaled 1e16
  char status = '0';  // 39
  bool canceled = false;
  bool rejected = false;
  int64_t txTime = 0;  // its TransactTime (60), ns; 0 when it had none

  Dec leaves() const {
    if (canceled || rejected) return Dec();
    return sub(qty, cum);
  }
  Dec avgPx() const {
    if (cum.v == 0) return Dec();
    return Dec::raw(divRound(notional, cum.v));
  }
  bool open() const { return !canceled && !rejected && cum.v < qty.v; }
};

struct Position {
  Dec qty;  // net, signed
  Dec avg;  // average entry price of the open position
};

class Counterparty : public FIX::Application {
 public:
  Counterparty(const Options& o, const FIX::SessionID& sid, std::optional<FIX::SessionID> dcSid)
      : m_opt(o), m_sid(sid), m_dcSid(std::move(dcSid)), m_hold(o.hold), m_cash(o.cash) {
    m_startMs = nowNs() / 1000000LL;
    m_journal.open(o.dir + "/book.jsonl", std::ios::out | std::ios::app);
    if (!m_journal) throw std::runtime_error("cannot open " + o.dir + "/book.jsonl");
    for (const auto& kv : o.startOfDay) {
      m_positions[kv.first] = Position{kv.second, o.marketPrice};
      m_sod[kv.first] = kv.second;
    }
  }

  // SIGUSR2
  void toggleHold() {
    std::lock_guard<std::mutex> l(m_mu);
    m_hold = !m_hold;
    say(std::string("hold mode ") + (m_hold ? "on" : "off"));
  }

  // SIGUSR1: fill every resting order in full at its price. The reports are built under the
  // book's lock and sent after it is released: sending takes the session's lock, which the
  // acceptor's thread holds while it calls fromApp (which takes the book's lock).
  void release() {
    std::vector<FIX::Message> out;
    {
      std::lock_guard<std::mutex> l(m_mu);
      for (const std::string& id : m_orderSeq) {
        Order& o = m_orders[id];
        if (!o.open()) continue;
        fill(o, o.leaves(), out);
      }
    }
    size_t sent = 0;
    for (FIX::Message& m : out) {
      if (send(m)) ++sent;
    }
    FIX::Session* s = FIX::Session::lookupSession(m_sid);
    say("release: " + std::to_string(out.size()) + " fill(s), " + std::to_string(sent) +
        " handed to the session (logged on: " + (s && s->isLoggedOn() ? "yes" : "no") + ")");
  }

  // SIGHUP (only with a drop copy session): a trade made by hand at the broker. A new order
  // MANUAL-<n> (buy --manual-qty --manual-symbol at --manual-price, market) is filled in full
  // into the book, and its report goes out on the drop copy session only: vigil never sent that
  // order. Built under the book's lock and sent after it is released, as in release().
  void manualTrade() {
    if (!m_dcSid) return;
    std::vector<FIX::Message> out;
    std::string clordid;
    {
      std::lock_guard<std::mutex> l(m_mu);
      do {
        clordid = "MANUAL-" + std::to_string(++m_manualN);
      } while (m_orders.count(clordid) || m_alias.count(clordid));
      Order o;
      o.clordid = clordid;
      o.orderId = "O" + std::to_string(++m_orderN);
      o.symbol = m_opt.manualSymbol;
      o.side = "1";
      o.ordType = "1";
      o.qty = m_opt.manualQty;
      o.fillPx = m_opt.manualPrice ? *m_opt.manualPrice : m_opt.marketPrice;
      m_orderSeq.push_back(clordid);
      Order& ord = m_orders[clordid] = o;
      fill(ord, ord.qty, out, /*manual=*/true);
    }
    size_t sent = 0;
    for (FIX::Message& m : out) {
      if (sendDropCopy(m)) ++sent;
    }
    FIX::Session* s = FIX::Session::lookupSession(*m_dcSid);
    say("manual trade " + clordid + ": " + std::to_string(out.size()) + " fill(s), " +
        std::to_string(sent) + " handed to the drop copy session (logged on: " +
        (s && s->isLoggedOn() ? "yes" : "no") + ")");
  }

  // --- FIX::Application

  void onCreate(const FIX::SessionID&) override {}
  void onLogon(const FIX::SessionID& s) override { say("logon: " + s.toString()); }
  void onLogout(const FIX::SessionID& s) override { say("logout: " + s.toString()); }
  void toAdmin(FIX::Message&, const FIX::SessionID&) override {}
  void toApp(FIX::Message&, const FIX::SessionID&) override {}

  void fromAdmin(const FIX::Message& msg, const FIX::SessionID&) override {
    if (msg.getHeader().getField(35) != "A") return;
    bool hasUser = msg.isSetField(553), hasPass = msg.isSetField(554);
    std::string user = hasUser ? msg.getField(553) : "";
    say(std::string("logon attempt: username ") + (hasUser ? "present (" + user + ")" : "absent") +
        ", password " + (hasPass ? "present" : "absent"));
    if (!m_opt.checkCredentials) return;
    if (!hasUser || !hasPass || user != m_opt.username || msg.getField(554) != m_opt.password) {
      say("logon rejected: bad credentials");
      throw FIX::RejectLogon("bad credentials");
    }
    say("logon credentials accepted");
  }

  void fromApp(const FIX::Message& msg, const FIX::SessionID& sid) override {
    // The drop copy session only sends: any application message on it is refused (35=j 380=3).
    if (m_dcSid && sid == *m_dcSid) throw FIX::UnsupportedMessageType();
    const std::string type = msg.getHeader().getField(35);
    bool possdup = msg.getHeader().isSetField(43) && msg.getHeader().getField(43) == "Y";
    std::lock_guard<std::mutex> l(m_mu);
    if (msg.isSetField(60)) {
      if (auto t = parseUtc(msg.getField(60))) m_marketTime = *t;
    }
    if (type == "D") onNewOrder(msg, possdup);
    else if (type == "F") onCancel(msg);
    else if (type == "H") onStatus(msg);
    else if (type == "AF") onMassStatus(msg);
    else if (type == "AN" && !m_opt.noPositions) onPositions(msg);
    else throw FIX::UnsupportedMessageType();
  }

 private:
  // --- helpers (all called with m_mu held, except journal, send and sendDropCopy)

  // Its own lock, taken last: the drop copy lines are written after m_mu is released.
  void journal(const std::string& line) {
    std::lock_guard<std::mutex> l(m_journalMu);
    m_journal << line << '\n';
    m_journal.flush();
  }

  std::string nextExecId() { return "E" + std::to_string(m_startMs) + "-" + std::to_string(++m_execN); }

  std::string reportTime(const Order* o) const {
    int64_t t = m_marketTime;
    if (o && o->txTime > t) t = o->txTime;
    if (t == 0) t = nowNs();
    return fmtUtcMs(t);
  }

  // Sends on the order session. With a drop copy session, an ExecutionReport other than a
  // status reply (150=I) is then also sent there, as a copy with the same body (same ExecID).
  bool send(FIX::Message& m) {
    std::optional<FIX::Message> copy;
    if (m_dcSid && m.getHeader().isSetField(35) && m.getHeader().getField(35) == "8" &&
        !(m.isSetField(150) && m.getField(150) == "I"))
      copy = m;  // taken before sending fills in the order session's header
    bool ok = FIX::Session::sendToTarget(m, m_sid);
    if (copy) sendDropCopy(*copy);
    return ok;
  }

  // Sends on the drop copy session; QuickFIX stores it (under the next MsgSeqNum) when that
  // session is not logged on, for its ResendRequest. Journals a drop_copy line.
  bool sendDropCopy(FIX::Message& m) {
    const std::string execId = m.isSetField(17) ? m.getField(17) : "";
    const std::string clordid = m.isSetField(11) ? m.getField(11) : "";
    const std::string execType = m.isSetField(150) ? m.getField(150) : "";
    bool ok = FIX::Session::sendToTarget(m, *m_dcSid);
    if (ok) {
      journal("{\"event\":\"drop_copy\",\"exec_id\":" + jstr(execId) + ",\"clordid\":" +
              jstr(clordid) + ",\"exec_type\":" + jstr(execType) + "}");
    }
    return ok;
  }

  static FIX::Message newMsg(const char* type) {
    FIX::Message m;
    m.getHeader().setField(35, type);
    return m;
  }

  // An ExecutionReport about an order (o may be null for the "NONE" reports).
  struct Er {
    std::string execType, ordStatus, clordid, orderId = "NONE", orig, symbol, side, text;
    std::string ordType, account;
    std::optional<Dec> qty, price;
    Dec lastQty, lastPx, cum, leaves, avg, commission;
    bool isFill = false;
    bool manual = false;    // the SIGHUP trade: journaled with "drop_copy": true
    std::string rejReason;  // 103
    std::vector<std::pair<int, std::string>> extra;
  };

  FIX::Message buildEr(const Er& e, const Order* o) {
    FIX::Message m = newMsg("8");
    std::string execId = nextExecId();
    m.setField(37, e.orderId);
    m.setField(11, e.clordid);
    if (!e.orig.empty()) m.setField(41, e.orig);
    m.setField(17, execId);
    m.setField(150, e.execType);
    m.setField(39, e.ordStatus);
    m.setField(55, e.symbol.empty() ? "NONE" : e.symbol);
    m.setField(54, e.side.empty() ? "1" : e.side);
    if (!e.account.empty()) m.setField(1, e.account);
    if (e.qty) m.setField(38, fmtDec(*e.qty));
    if (!e.ordType.empty()) m.setField(40, e.ordType);
    if (e.price) m.setField(44, fmtDec(*e.price));
    if (e.isFill) {
      m.setField(32, fmtDec(e.lastQty));
      m.setField(31, fmtDec(e.lastPx));
      if (e.commission.v != 0) {
        m.setField(12, fmtDec(e.commission));
        m.setField(13, "3");
      }
    }
    m.setField(14, fmtDec(e.cum));
    m.setField(151, fmtDec(e.leaves));
    m.setField(6, fmtDec(e.avg));
    m.setField(60, reportTime(o));
    if (!e.rejReason.empty()) m.setField(103, e.rejReason);
    if (!e.text.empty()) m.setField(58, e.text);
    for (const auto& kv : e.extra) m.setField(kv.first, kv.second);

    std::ostringstream j;
    j << "{\"event\":\"exec\",\"exec_id\":" << jstr(execId) << ",\"clordid\":" << jstr(e.clordid);
    if (!e.orig.empty()) j << ",\"orig\":" << jstr(e.orig);
    j << ",\"exec_type\":" << jstr(e.execType) << ",\"ord_status\":" << jstr(e.ordStatus)
      << ",\"last_qty\":" << jstr(fmtDec(e.isFill ? e.lastQty : Dec()))
      << ",\"last_px\":" << jstr(fmtDec(e.isFill ? e.lastPx : Dec()))
      << ",\"cum_qty\":" << jstr(fmtDec(e.cum)) << ",\"leaves_qty\":" << jstr(fmtDec(e.leaves))
      << ",\"commission\":" << jstr(fmtDec(e.isFill ? e.commission : Dec()));
    if (e.manual) j << ",\"drop_copy\":true";
    j << "}";
    journal(j.str());
    return m;
  }

  Er erFor(const Order& o, const std::string& execType) {
    Er e;
    e.execType = execType;
    e.ordStatus = std::string(1, o.status);
    e.clordid = o.clordid;
    e.orderId = o.orderId;
    e.symbol = o.symbol;
    e.side = o.side;
    e.ordType = o.ordType;
    e.account = o.account;
    e.qty = o.qty;
    e.price = o.price;
    e.cum = o.cum;
    e.leaves = o.leaves();
    e.avg = o.avgPx();
    return e;
  }

  // Fill `q` of `o` at its fill price; updates the order, the position and the cash, and
  // journals the report and the book. The report is appended to `out` (sent by the caller).
  void fill(Order& o, Dec q, std::vector<FIX::Message>& out, bool manual = false) {
    if (q.v <= 0) return;
    Dec px = o.fillPx;
    o.cum = add(o.cum, q);
    o.notional += q.v * px.v;
    o.status = o.cum.v >= o.qty.v ? '2' : '1';

    Dec comm = m_opt.commission;
    Dec value = mul(q, px);
    bool buy = o.side == "1";
    m_cash = buy ? sub(m_cash, add(value, comm)) : add(m_cash, sub(value, comm));

    Position& p = m_positions[o.symbol];
    Dec signedQ = buy ? q : neg(q);
    if (p.qty.v == 0 || (p.qty.v > 0) == (signedQ.v > 0)) {
      Dec a = absd(p.qty), b = absd(signedQ);
      p.avg = Dec::raw(divRound(a.v * p.avg.v + b.v * px.v, a.v + b.v));
      p.qty = add(p.qty, signedQ);
    } else if (absd(signedQ).v <= absd(p.qty).v) {
      p.qty = add(p.qty, signedQ);
      if (p.qty.v == 0) p.avg = Dec();
    } else {
      p.qty = add(p.qty, signedQ);
      p.avg = px;
    }

    Er e = erFor(o, "F");
    e.isFill = true;
    e.lastQty = q;
    e.lastPx = px;
    e.commission = comm;
    e.manual = manual;
    out.push_back(buildEr(e, &o));

    std::ostringstream j;
    j << "{\"event\":\"book\",\"cash\":" << jstr(fmtDec(m_cash)) << ",\"positions\":{";
    bool first = true;
    for (const auto& kv : m_positions) {
      if (kv.second.qty.v == 0) continue;
      j << (first ? "" : ",") << jstr(kv.first) << ":" << jstr(fmtDec(kv.second.qty));
      first = false;
    }
    j << "}}";
    journal(j.str());
  }

  Order* find(const std::string& clordid) {
    auto it = m_orders.find(clordid);
    if (it != m_orders.end()) return &it->second;
    auto a = m_alias.find(clordid);
    if (a != m_alias.end()) return &m_orders[a->second];
    return nullptr;
  }

  // --- D

  void onNewOrder(const FIX::Message& msg, bool possdup) {
    const std::string clordid = msg.getField(11);
    const std::string symbol = msg.isSetField(55) ? msg.getField(55) : "";
    const std::string side = msg.isSetField(54) ? msg.getField(54) : "";
    const std::string qtyS = msg.isSetField(38) ? msg.getField(38) : "";
    const std::string ordType = msg.isSetField(40) ? msg.getField(40) : "";
    const bool hasPrice = msg.isSetField(44);
    const std::string priceS = hasPrice ? msg.getField(44) : "";

    {
      std::ostringstream j;
      auto q = parseDec(qtyS);
      auto p = parseDec(priceS);
      j << "{\"event\":\"order\",\"clordid\":" << jstr(clordid) << ",\"symbol\":" << jstr(symbol)
        << ",\"side\":" << jstr(side) << ",\"qty\":" << jstr(q ? fmtDec(*q) : qtyS)
        << ",\"ord_type\":" << jstr(ordType) << ",\"price\":"
        << (hasPrice ? jstr(p ? fmtDec(*p) : priceS) : std::string("null"))
        << ",\"possdup\":" << (possdup ? "true" : "false") << "}";
      journal(j.str());
    }

    if (m_orders.count(clordid) || m_alias.count(clordid)) {
      journal("{\"event\":\"duplicate\",\"clordid\":" + jstr(clordid) + "}");
      Er e;
      e.execType = "8";
      e.ordStatus = "8";
      e.clordid = clordid;
      e.symbol = symbol;
      e.side = side;
      e.ordType = ordType;
      e.qty = parseDec(qtyS);
      e.rejReason = "6";
      e.text = "duplicate ClOrdID " + clordid;
      FIX::Message m = buildEr(e, nullptr);
      send(m);
      return;
    }

    Order o;
    o.clordid = clordid;
    o.orderId = "O" + std::to_string(++m_orderN);
    o.symbol = symbol;
    o.side = side;
    o.ordType = ordType;
    o.account = msg.isSetField(1) ? msg.getField(1) : "";
    if (msg.isSetField(60)) {
      if (auto t = parseUtc(msg.getField(60))) o.txTime = *t;
    }
    auto q = parseDec(qtyS);
    if (q) o.qty = *q;
    if (hasPrice) o.price = parseDec(priceS);

    std::string why;
    if (symbol == "REJ") why = "symbol REJ is always rejected";
    else if (!q || q->v <= 0) why = "invalid quantity " + qtyS;
    else if (side != "1" && side != "2") why = "unsupported side " + side;
    else if (ordType != "1" && ordType != "2") why = "unsupported OrdType " + ordType;
    else if (ordType == "2" && (!o.price || o.price->v <= 0)) why = "limit order without a valid price";

    m_orderSeq.push_back(clordid);
    Order& ord = m_orders[clordid] = o;
    if (!why.empty()) {
      ord.rejected = true;
      ord.status = '8';
      Er e = erFor(ord, "8");
      e.rejReason = "0";
      e.text = why;
      FIX::Message m = buildEr(e, &ord);
      send(m);
      return;
    }

    ord.fillPx = ord.ordType == "2" ? *ord.price : m_opt.marketPrice;
    ord.status = '0';
    {
      FIX::Message m = buildEr(erFor(ord, "0"), &ord);
      send(m);
    }

    std::vector<FIX::Message> out;
    if (symbol == "REST" || m_hold) return;
    if (symbol == "SPLIT") {
      // Half now, then the session is dropped, then the rest is sent while the initiator is
      // away: QuickFIX stores it under the next MsgSeqNum without sending it, so the
      // initiator only gets it by ResendRequest on its next logon.
      i128 half = (ord.qty.v / 2) / SCALE * SCALE;
      if (half < SCALE) half = SCALE;
      if (half > ord.qty.v) half = ord.qty.v;
      fill(ord, Dec::raw(half), out);
      for (auto& m : out) send(m);
      out.clear();
      if (FIX::Session* s = FIX::Session::lookupSession(m_sid)) s->disconnect();
      say("SPLIT " + clordid + ": partial fill sent, session dropped");
      fill(ord, ord.leaves(), out);
      for (auto& m : out) send(m);
      if (!out.empty()) say("SPLIT " + clordid + ": the rest stored for resend");
      return;
    }
    if (m_opt.partialAbove.v > 0 && ord.qty.v > m_opt.partialAbove.v) {
      fill(ord, m_opt.partialAbove, out);
    } else {
      fill(ord, ord.qty, out);
    }
    for (auto& m : out) send(m);
  }

  // --- F

  void onCancel(const FIX::Message& msg) {
    const std::string clordid = msg.getField(11);
    const std::string orig = msg.getField(41);
    Order* o = find(orig);
    if (o && o->open()) {
      o->canceled = true;
      o->status = '4';
      m_alias[clordid] = o->clordid;
      Er e = erFor(*o, "4");
      e.clordid = clordid;
      e.orig = orig;
      FIX::Message m = buildEr(e, o);
      send(m);
      return;
    }
    FIX::Message m = newMsg("9");
    m.setField(37, o ? o->orderId : "NONE");
    m.setField(11, clordid);
    m.setField(41, orig);
    m.setField(39, o ? std::string(1, o->status) : "8");
    m.setField(434, "1");
    std::string text;
    if (!o) text = "unknown order";
    else if (o->rejected) text = "order was rejected";
    else if (o->canceled) text = "order already canceled";
    else text = "too late to cancel: order filled";
    m.setField(102, o ? "0" : "1");
    m.setField(58, text);
    m.setField(60, reportTime(o));
    journal("{\"event\":\"cancel_reject\",\"clordid\":" + jstr(clordid) + ",\"orig\":" +
            jstr(orig) + "}");
    send(m);
  }

  // --- H

  void onStatus(const FIX::Message& msg) {
    const std::string clordid = msg.isSetField(11) ? msg.getField(11) : "";
    Order* o = clordid.empty() ? nullptr : find(clordid);
    if (!o && msg.isSetField(37)) {
      for (auto& kv : m_orders)
        if (kv.second.orderId == msg.getField(37)) o = &kv.second;
    }
    Er e;
    if (o) {
      e = erFor(*o, "I");
    } else {
      e.execType = "I";
      e.ordStatus = "8";
      e.clordid = clordid.empty() ? "NONE" : clordid;
      e.symbol = msg.isSetField(55) ? msg.getField(55) : "NONE";
      e.side = msg.isSetField(54) ? msg.getField(54) : "1";
      e.rejReason = "5";
      e.text = "unknown order";
    }
    if (msg.isSetField(790)) e.extra.push_back({790, msg.getField(790)});
    FIX::Message m = buildEr(e, o);
    send(m);
  }

  // --- AF

  void onMassStatus(const FIX::Message& msg) {
    const std::string reqId = msg.isSetField(584) ? msg.getField(584) : "";
    std::vector<Order*> open;
    for (const std::string& id : m_orderSeq) {
      Order& o = m_orders[id];
      if (o.open()) open.push_back(&o);
    }
    std::vector<FIX::Message> out;
    if (open.empty()) {
      Er e;
      e.execType = "I";
      e.ordStatus = "8";
      e.clordid = "NONE";
      e.symbol = "NONE";
      e.side = "1";
      if (!reqId.empty()) e.extra.push_back({584, reqId});
      e.extra.push_back({911, "0"});
      e.extra.push_back({912, "Y"});
      out.push_back(buildEr(e, nullptr));
    } else {
      for (size_t i = 0; i < open.size(); ++i) {
        Er e = erFor(*open[i], "I");
        if (!reqId.empty()) e.extra.push_back({584, reqId});
        e.extra.push_back({911, std::to_string(open.size())});
        e.extra.push_back({912, i + 1 == open.size() ? "Y" : "N"});
        out.push_back(buildEr(e, open[i]));
      }
    }
    for (auto& m : out) send(m);
  }

  // --- AN

  // No Parties group (453) on AO/AP: FIX44.xml marks the Parties component required but its
  // NoPartyIDs field optional, so QuickFIX's own dictionary accepts the reports without it.
  // Left out on purpose: without a data dictionary QuickFIX re-serialises a message it resends
  // in plain tag order, which would put 447/448/452 before 453 and break the group. The
  // NoPositions group (702: 703, 704, 705) survives that, its members' tags being larger.

  void onPositions(const FIX::Message& msg) {
    const std::string reqId = msg.isSetField(710) ? msg.getField(710) : "NONE";
    const std::string account = msg.isSetField(1) && !msg.getField(1).empty() ? msg.getField(1) : "VIGIL";
    std::vector<std::pair<std::string, Position>> held;
    for (const auto& kv : m_positions)
      if (kv.second.qty.v != 0 || m_sod.count(kv.first)) held.push_back(kv);
    const std::string total = std::to_string(held.size());

    std::vector<FIX::Message> out;
    FIX::Message ack = newMsg("AO");
    ack.setField(721, "P" + std::to_string(m_startMs) + "-" + std::to_string(++m_posRptN));
    ack.setField(710, reqId);
    ack.setField(727, total);
    ack.setField(728, held.empty() ? "2" : "0");
    ack.setField(729, "0");
    ack.setField(1, account);
    ack.setField(581, "1");
    out.push_back(ack);

    const std::string today = todayUtc();
    for (const auto& kv : held) {
      const Position& p = kv.second;
      FIX::Message r = newMsg("AP");
      r.setField(721, "P" + std::to_string(m_startMs) + "-" + std::to_string(++m_posRptN));
      r.setField(710, reqId);
      r.setField(724, "0");
      r.setField(727, total);
      r.setField(728, "0");
      r.setField(715, today);
      r.setField(1, account);
      r.setField(581, "1");
      r.setField(55, kv.first);
      r.setField(730, fmtDec(p.avg));
      r.setField(731, "1");
      r.setField(734, fmtDec(p.avg));
      // One amount (TQ: the whole position), or SOD and TQ apart with --start-of-day.
      std::vector<std::pair<std::string, Dec>> amounts;
      if (m_opt.startOfDay.empty()) {
        amounts.emplace_back("TQ", p.qty);
      } else {
        auto sod = m_sod.find(kv.first);
        Dec start = sod == m_sod.end() ? Dec() : sod->second;
        amounts.emplace_back("SOD", start);
        amounts.emplace_back("TQ", sub(p.qty, start));
      }
      for (const auto& a : amounts) {
        FIX::Group g(702, 703);
        g.setField(703, a.first);
        g.setField(704, fmtDec(a.second.v > 0 ? a.second : Dec()));
        g.setField(705, fmtDec(a.second.v < 0 ? neg(a.second) : Dec()));
        r.addGroup(g);
      }
      out.push_back(r);
    }
    for (auto& m : out) send(m);
  }

  const Options m_opt;
  const FIX::SessionID m_sid;
  const std::optional<FIX::SessionID> m_dcSid;  // the drop copy session, if any
  std::mutex m_mu;
  std::mutex m_journalMu;
  bool m_hold;
  Dec m_cash;
  int64_t m_startMs = 0;
  int64_t m_marketTime = 0;
  uint64_t m_execN = 0, m_orderN = 0, m_posRptN = 0, m_manualN = 0;
  std::map<std::string, Order> m_orders;
  std::vector<std::string> m_orderSeq;
  std::map<std::string, std::string> m_alias;  // a cancel's ClOrdID -> the order's
  std::map<std::string, Position> m_positions;
  std::map<std::string, Dec> m_sod;  // --start-of-day
  std::ofstream m_journal;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "acceptor: " << why << "\n"
            << "usage: acceptor --port P --dir D [--sender QFACC] [--target VIGIL]\n"
               "                [--username U --password-file F] [--market-price 100]\n"
               "                [--partial-above 0] [--commission 0] [--cash 100000] [--hold]\n"
               "                [--no-positions] [--start-of-day SYMBOL=QTY ...]\n"
               "                [--drop-copy-target T [--manual-symbol GOOG] [--manual-qty 7]\n"
               "                 [--manual-price P]]\n"
               "                [--dict FIX44.xml]\n";
  exit(2);
}

Dec decArg(const std::string& name, const std::string& v) {
  auto d = parseDec(v);
  if (!d) usage("bad decimal for " + name + ": " + v);
  return *d;
}

Options parseArgs(int argc, char** argv) {
  Options o;
  bool manualGiven = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage("missing value for " + a);
      return argv[++i];
    };
    if (a == "--port") o.port = atoi(val().c_str());
    else if (a == "--dir") o.dir = val();
    else if (a == "--sender") o.sender = val();
    else if (a == "--target") o.target = val();
    else if (a == "--username") o.username = val();
    else if (a == "--password-file") o.passwordFile = val();
    else if (a == "--market-price") o.marketPrice = decArg(a, val());
    else if (a == "--partial-above") o.partialAbove = decArg(a, val());
    else if (a == "--commission") o.commission = decArg(a, val());
    else if (a == "--cash") o.cash = decArg(a, val());
    else if (a == "--hold") o.hold = true;
    else if (a == "--no-positions") o.noPositions = true;
    else if (a == "--start-of-day") {
      std::string v = val();
      size_t eq = v.find('=');
      if (eq == 0 || eq == std::string::npos) usage("--start-of-day wants SYMBOL=QTY, got " + v);
      o.startOfDay.emplace_back(v.substr(0, eq), decArg(a, v.substr(eq + 1)));
    }
    else if (a == "--dict") o.dict = val();
    else if (a == "--drop-copy-target") o.dropCopyTarget = val();
    else if (a == "--manual-symbol") { o.manualSymbol = val(); manualGiven = true; }
    else if (a == "--manual-qty") { o.manualQty = decArg(a, val()); manualGiven = true; }
    else if (a == "--manual-price") { o.manualPrice = decArg(a, val()); manualGiven = true; }
    else usage("unknown argument " + a);
  }
  if (manualGiven && o.dropCopyTarget.empty())
    usage("--manual-symbol/--manual-qty/--manual-price need --drop-copy-target");
  if (!o.dropCopyTarget.empty() && o.dropCopyTarget == o.target)
    usage("--drop-copy-target must differ from --target");
  if (o.manualSymbol.empty()) usage("--manual-symbol is empty");
  if (o.manualQty.v <= 0) usage("--manual-qty must be > 0");
  if (o.manualPrice && o.manualPrice->v <= 0) usage("--manual-price must be > 0");
  if (o.port <= 0 || o.port > 65535) usage("--port is required");
  if (o.dir.empty()) usage("--dir is required");
  if (o.username.empty() != o.passwordFile.empty())
    usage("--username and --password-file go together");
  if (!o.username.empty()) {
    std::ifstream f(o.passwordFile);
    if (!f) usage("cannot read " + o.passwordFile);
    std::stringstream ss;
    ss << f.rdbuf();
    o.password = ss.str();
    while (!o.password.empty() && (o.password.back() == '\n' || o.password.back() == '\r'))
      o.password.pop_back();
    o.checkCredentials = true;
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parseArgs(argc, argv);
  mkdir(opt.dir.c_str(), 0755);
  mkdir((opt.dir + "/store").c_str(), 0755);
  mkdir((opt.dir + "/log").c_str(), 0755);

  // The signals are blocked in every thread QuickFIX starts and taken by this one only.
  signal(SIGPIPE, SIG_IGN);
  // SIGHUP is taken only with a drop copy session; otherwise it keeps its default action.
  std::vector<int> sigs = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
  if (!opt.dropCopyTarget.empty()) sigs.push_back(SIGHUP);
  sigset_t set;
  sigemptyset(&set);
  for (int s : sigs) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int s : sigs) sigaction(s, &sa, nullptr);

  std::ostringstream cfg;
  cfg << "[DEFAULT]\n"
      << "ConnectionType=acceptor\n"
      << "SocketAcceptPort=" << opt.port << "\n"
      << "SocketReuseAddress=Y\n"
      << "FileStorePath=" << opt.dir << "/store\n"
      << "FileLogPath=" << opt.dir << "/log\n"
      << "StartTime=00:00:00\n"
      << "EndTime=00:00:00\n"
      << "ResetOnLogon=N\nResetOnLogout=N\nResetOnDisconnect=N\nRefreshOnLogon=N\n"
      << "PersistMessages=Y\n"
      << "ValidateUserDefinedFields=N\nAllowUnknownMsgFields=Y\n"
      << "CheckLatency=N\n"
      << "MillisecondsInTimeStamp=Y\n";
  if (opt.dict.empty()) {
    cfg << "UseDataDictionary=N\n";
  } else {
    cfg << "UseDataDictionary=Y\nDataDictionary=" << opt.dict << "\n"
        << "ValidateFieldsOutOfOrder=N\n";
  }
  cfg << "[SESSION]\n"
      << "BeginString=FIX.4.4\n"
      << "SenderCompID=" << opt.sender << "\n"
      << "TargetCompID=" << opt.target << "\n";
  if (!opt.dropCopyTarget.empty()) {
    cfg << "[SESSION]\n"
        << "BeginString=FIX.4.4\n"
        << "SenderCompID=" << opt.sender << "\n"
        << "TargetCompID=" << opt.dropCopyTarget << "\n";
  }

  try {
    std::istringstream in(cfg.str());
    FIX::SessionSettings settings(in);
    FIX::SessionID sid("FIX.4.4", opt.sender, opt.target);
    std::optional<FIX::SessionID> dcSid;
    if (!opt.dropCopyTarget.empty()) dcSid = FIX::SessionID("FIX.4.4", opt.sender, opt.dropCopyTarget);
    Counterparty app(opt, sid, dcSid);
    FIX::FileStoreFactory store(settings);
    MaskingLogFactory logs(opt.dir + "/log");
    FIX::SocketAcceptor acceptor(app, store, settings, logs);
    acceptor.start();

    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    say(std::string("credentials: ") +
        (opt.checkCredentials ? "required (username " + opt.username + ")" : "not checked"));
    say(std::string("data dictionary: ") + (opt.dict.empty() ? "none" : opt.dict));
    if (!opt.dropCopyTarget.empty()) say("drop copy session: " + dcSid->toString());
    say("acceptor listening on 127.0.0.1:" + std::to_string(opt.port));

    while (!g_stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      for (int n = g_toggleHold.exchange(0); n > 0; --n) app.toggleHold();
      if (g_release.exchange(false)) app.release();
      for (int n = g_manual.exchange(0); n > 0; --n) app.manualTrade();
    }
    say("stopping");
    acceptor.stop();
    say("stopped");
  } catch (const std::exception& e) {
    std::cerr << "acceptor: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
