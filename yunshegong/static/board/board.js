/* The situation board (/board): a client of the public GraphQL API, nothing more. It signs in with the
   `login` mutation, keeps the token in sessionStorage (gone with the tab; never in localStorage or the URL),
   reads the `situation` query every 60 s and, over graphql-transport-ws, soon after any help request changes.
   Charts: Apache ECharts (vendored, canvas renderer). All text comes from TEXT below. */
(function () {
  "use strict";

  var TOKEN_KEY = "yunshegong.board.token";
  var REFRESH_MS = 60 * 1000;
  var DEBOUNCE_MS = 2000; // a burst of changes (e.g. a mass import) costs one reload
  var CLOSE_FORBIDDEN = 4403; // the server's close code for a refused, expired or revoked credential

  var TEXT = {
    zh: {
      title: "态势看板",
      switchLanguage: "English",
      signInTitle: "登录态势看板",
      username: "用户名",
      password: "密码",
      signIn: "登录",
      signOut: "退出",
      badCredentials: "用户名或密码错误。",
      tooManyAttempts: "尝试次数过多，请 {seconds} 秒后再试。",
      signInFailed: "登录失败：{message}",
      expired: "登录已过期，请重新登录。",
      forbidden: "您的账号无权查看态势看板。请使用机构管理员、社工或社区负责人的账号登录。",
      loadFailed: "数据加载失败，稍后自动重试。",
      chooseOrganisation: "平台管理员请在地址后加上要查看的机构：/board?org=<机构 ID>。",
      openTotal: "待处理求助",
      overdue: "已超时",
      itemsToday: "今日发放物资",
      byUrgency: "按紧急程度",
      byDistrict: "按区县（待处理）",
      volunteersByMode: "可用志愿者",
      map: "社区分布（待处理求助）",
      updated: "更新于 {time}",
      live: "实时",
      polling: "轮询",
      noData: "暂无数据",
      critical: "特急",
      other: "其他",
      openCount: "待处理 {count}",
      criticalCount: "特急 {count}",
      noCoordinates: "{count} 个社区未登记坐标，未显示在图中。",
      CRITICAL: "特急",
      HIGH: "紧急",
      NORMAL: "一般",
      LOW: "不急",
      ONLINE: "线上",
      OFFLINE: "线下",
      RESERVE: "后备"
    },
    en: {
      title: "Situation board",
      switchLanguage: "中文",
      signInTitle: "Sign in to the situation board",
      username: "Username",
      password: "Password",
      signIn: "Sign in",
      signOut: "Sign out",
      badCredentials: "Wrong username or password.",
      tooManyAttempts: "Too many attempts; try again in {seconds} s.",
      signInFailed: "Sign-in failed: {message}",
      expired: "Your session has ended; please sign in again.",
      forbidden: "Your account may not view the situation board. Sign in as an organisation admin, social worker " +
        "or community head.",
      loadFailed: "Could not load the data; retrying shortly.",
      chooseOrganisation: "Platform administrators name the organisation to show: /board?org=<organisation ID>.",
      openTotal: "Open requests",
      overdue: "Overdue",
      itemsToday: "Items distributed today",
      byUrgency: "By urgency",
      byDistrict: "Open by district",
      volunteersByMode: "Volunteers available",
      map: "Open requests by community",
      updated: "Updated {time}",
      live: "Live",
      polling: "Polling",
      noData: "No data",
      critical: "Critical",
      other: "Other",
      openCount: "Open {count}",
      criticalCount: "Critical {count}",
      noCoordinates: "{count} communities have no coordinates and are not shown.",
      CRITICAL: "Critical",
      HIGH: "High",
      NORMAL: "Normal",
      LOW: "Low",
      ONLINE: "Online",
      OFFLINE: "Offline",
      RESERVE: "Reserve"
    }
  };

  var URGENCIES = ["CRITICAL", "HIGH", "NORMAL", "LOW"];
  var URGENCY_COLOURS = { CRITICAL: "#ff4d4f", HIGH: "#fa8c16", NORMAL: "#3ba7ff", LOW: "#8c9bb5" };
  var MODES = ["ONLINE", "OFFLINE", "RESERVE"];
  var MODE_COLOURS = { ONLINE: "#36cfc9", OFFLINE: "#73d13d", RESERVE: "#9254de" };
  var AXIS = { axisLine: { lineStyle: { color: "#3a4a68" } }, splitLine: { lineStyle: { color: "#1e2a42" } } };

  var LOGIN = "mutation BoardLogin($input: LoginInput!) { login(input: $input) { token expiresAt " +
    "account { username displayName organization { name } } errors { code message } retryAfter } }";
  var SITUATION = "query Board($org: ID) { situation(organizationId: $org) { asOf openRequests overdueRequests " +
    "openRequestsByUrgency { urgency count } " +
    "openRequestsByDistrict { district { id name } count critical } " +
    "volunteersAvailableByMode { mode count } " +
    "openRequestsByCommunity { community { id name } count critical latitude longitude } " +
    "figures { plugin key value } } }";
  var ORGANISATION = "query BoardWho { me { organization { name } } }";
  var CHANGES = "subscription BoardLive { helpRequestChanged { change requestId } }";

  var state = {
    lang: initialLanguage(),
    charts: {},
    situation: null,
    timer: null,
    debounce: null,
    live: null,
    generation: 0 // bumped on sign-out: answers to an older session's requests are dropped
  };

  function $(id) { return document.getElementById(id); }

  function t(key, params) {
    var text = (TEXT[state.lang] && TEXT[state.lang][key]) || TEXT.en[key] || key;
    Object.keys(params || {}).forEach(function (name) { text = text.split("{" + name + "}").join(params[name]); });
    return text;
  }

  function initialLanguage() {
    var asked = new URLSearchParams(window.location.search).get("lang");
    if (asked) return asked.toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
    var preferred = (navigator.languages && navigator.languages[0]) || navigator.language || "zh";
    return preferred.toLowerCase().indexOf("zh") === 0 ? "zh" : "en";
  }

  function acceptLanguage() { return state.lang === "zh" ? "zh-CN, zh;q=0.9, en;q=0.5" : "en, zh-CN;q=0.5"; }

  function timeZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || null; } catch (e) { return null; }
  }

  // -- text -----------------------------------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.title = t("title");
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (el) {
      el.textContent = t(el.getAttribute("data-i18n"));
    });
    setStatus($("status").getAttribute("data-state"));
    if (state.situation) render(state.situation);
  }

  function toggleLanguage() {
    state.lang = state.lang === "zh" ? "en" : "zh";
    var url = new URL(window.location.href);
    url.searchParams.set("lang", state.lang);
    window.history.replaceState(null, "", url.pathname + url.search); // the choice survives a reload
    applyLanguage();
    if (state.live) restartLive(); // the connection's locale is fixed at connection_init
  }

  // -- GraphQL over HTTP ----------------------------------------------------------------------------------

  function token() { return window.sessionStorage.getItem(TOKEN_KEY); }

  function GraphQLFailure(code, message) { this.code = code; this.message = message; }

  function gql(query, variables, withToken) {
    var headers = {
      "Content-Type": "application/json",
      "Accept": "application/graphql-response+json, application/json;q=0.9",
      "Accept-Language": acceptLanguage()
    };
    var zone = timeZone();
    if (zone) headers["X-Timezone"] = zone; // "today" is the viewer's day
    if (withToken && token()) headers.Authorization = "Bearer " + token();
    return fetch("graphql", {
      method: "POST",
      headers: headers,
      body: JSON.stringify({ query: query, variables: variables || {} }),
      credentials: "omit",
      cache: "no-store"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        var errors = body.errors || [];
        if (errors.length) {
          var code = (errors[0].extensions || {}).code || "ERROR";
          throw new GraphQLFailure(code, errors[0].message || String(response.status));
        }
        if (!response.ok) throw new GraphQLFailure("HTTP_" + response.status, String(response.status));
        return body.data;
      });
    });
  }

  // -- screens --------------------------------------------------------------------------------------------

  function show(screen) {
    $("signin").hidden = screen !== "signin";
    $("message").hidden = screen !== "message";
    $("board").hidden = screen !== "board";
    $("signout").hidden = screen === "signin";
    $("updated").hidden = screen !== "board";
    $("status").hidden = screen !== "board";
    if (screen === "board") resizeCharts();
  }

  function showSignIn(reason) {
    stopRefreshing();
    window.sessionStorage.removeItem(TOKEN_KEY);
    state.situation = null;
    delete document.body.dataset.rendered;
    $("org").textContent = "";
    var error = $("signin-error");
    error.hidden = !reason;
    error.textContent = reason ? t(reason) : "";
    error.setAttribute("data-code", reason || "");
    show("signin");
    $("password").value = "";
    $("username").focus();
  }

  function showMessage(key) {
    stopRefreshing();
    state.situation = null;
    $("message-text").textContent = t(key);
    $("message-text").setAttribute("data-i18n", key);
    $("message").setAttribute("data-code", key);
    show("message");
  }

  function signIn(event) {
    event.preventDefault();
    var submit = $("signin-submit");
    submit.disabled = true;
    var input = { username: $("username").value.trim(), password: $("password").value };
    gql(LOGIN, { input: input }, false).then(function (data) {
      var payload = data.login;
      if (!payload.token) {
        var first = (payload.errors || [])[0] || {};
        var error = $("signin-error");
        error.hidden = false;
        error.setAttribute("data-code", first.code || "ERROR");
        if (first.code === "UNAUTHENTICATED") error.textContent = t("badCredentials");
        else if (payload.retryAfter) error.textContent = t("tooManyAttempts", { seconds: payload.retryAfter });
        else error.textContent = t("signInFailed", { message: first.message || first.code || "" });
        return;
      }
      window.sessionStorage.setItem(TOKEN_KEY, payload.token);
      $("password").value = "";
      var account = payload.account || {};
      $("org").textContent = (account.organization && account.organization.name) || "";
      start();
    }).catch(function (failure) {
      var error = $("signin-error");
      error.hidden = false;
      error.setAttribute("data-code", failure.code || "ERROR");
      error.textContent = t("signInFailed", { message: failure.message || "" });
    }).then(function () { submit.disabled = false; });
  }

  function signOut() {
    state.generation += 1;
    showSignIn(null);
  }

  // -- refreshing -----------------------------------------------------------------------------------------

  function start() {
    state.generation += 1;
    var generation = state.generation;
    show("board");
    // Polling and the live connection start once the first answer says this account may see the board.
    load().then(function (keep) {
      if (!keep || generation !== state.generation) return;
      state.timer = window.setInterval(load, REFRESH_MS);
      startLive();
    });
    if (!$("org").textContent) {
      gql(ORGANISATION, {}, true).then(function (data) {
        var me = data && data.me;
        $("org").textContent = (me && me.organization && me.organization.name) || "";
      }).catch(function () { /* the board says what went wrong when it loads */ });
    }
  }

  function stopRefreshing() {
    if (state.timer) window.clearInterval(state.timer);
    if (state.debounce) window.clearTimeout(state.debounce);
    state.timer = state.debounce = null;
    stopLive();
  }

  function load() {
    var generation = state.generation;
    // A platform administrator names the organisation: /board?org=<id> (others see their own).
    var org = new URLSearchParams(window.location.search).get("org");
    return gql(SITUATION, { org: org || null }, true).then(function (data) {
      if (generation !== state.generation) return false;
      state.situation = data.situation;
      render(data.situation);
      return true;
    }).catch(function (failure) {
      if (generation !== state.generation) return false;
      if (failure.code === "UNAUTHENTICATED") showSignIn("expired");
      else if (failure.code === "FORBIDDEN") showMessage("forbidden");
      else if (failure.code === "REQUIRED") showMessage("chooseOrganisation");
      else {
        // A passing outage: keep what is shown (its time says how old it is) and try again on the next tick.
        if (window.console) window.console.warn("situation:", failure.code, failure.message);
        $("updated").textContent = t("loadFailed");
        return true;
      }
      return false;
    });
  }

  function soon() {
    if (state.debounce) return;
    state.debounce = window.setTimeout(function () { state.debounce = null; load(); }, DEBOUNCE_MS);
  }

  // -- live updates (graphql-transport-ws) ----------------------------------------------------------------

  function setStatus(name) {
    var el = $("status");
    el.setAttribute("data-state", name || "polling");
    el.textContent = t(name === "live" ? "live" : "polling");
  }

  function startLive() {
    setStatus("polling");
    if (!window.graphqlWs) return; // polling alone still keeps the board current
    var url = new URL("graphql", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    var generation = state.generation;
    var client = window.graphqlWs.createClient({
      url: url.href,
      lazy: false,
      retryAttempts: Infinity,
      onNonLazyError: function () {}, // the close is handled below (the default logs it as a console error)
      keepAlive: 20000,
      connectionParams: function () {
        var params = { authorization: "Bearer " + (token() || ""), locale: acceptLanguage() };
        var zone = timeZone();
        if (zone) params.timezone = zone;
        return params;
      },
      // A refused credential is final: sign in again rather than retry (any other drop is retried).
      shouldRetry: function (event) { return !(event && event.code === CLOSE_FORBIDDEN); },
      on: {
        connected: function () { if (generation === state.generation) setStatus("live"); },
        closed: function (event) {
          if (generation !== state.generation) return;
          setStatus("polling");
          if (event && event.code === CLOSE_FORBIDDEN) load(); // 401 -> the sign-in form; else it stays polling
        }
      }
    });
    var subscribe = function () {
      client.subscribe({ query: CHANGES }, {
        next: function () { soon(); }, // RESYNC first, then CREATED/UPDATED/REMOVED: each means reload
        error: function () { if (generation === state.generation) setStatus("polling"); },
        complete: function () {}
      });
    };
    subscribe();
    state.live = client;
  }

  function stopLive() {
    if (state.live) state.live.dispose();
    state.live = null;
  }

  function restartLive() {
    stopLive();
    startLive();
  }

  // -- drawing --------------------------------------------------------------------------------------------

  function chart(name) {
    if (!state.charts[name]) {
      state.charts[name] = window.echarts.init($("chart-" + name), null, { renderer: "canvas" });
    }
    return state.charts[name];
  }

  function resizeCharts() {
    Object.keys(state.charts).forEach(function (name) { state.charts[name].resize(); });
  }

  function base() {
    return {
      backgroundColor: "transparent",
      textStyle: { color: "#e6edf7", fontSize: 16 },
      // richText: the tooltip is drawn on the canvas, not as HTML with inline styles (blocked by the CSP)
      tooltip: { renderMode: "richText", backgroundColor: "#1b2740", textStyle: { color: "#e6edf7", fontSize: 16 } },
      animationDuration: 400,
      animationDurationUpdate: 400
    };
  }

  function empty(option, hasData) {
    if (!hasData) {
      option.title = {
        text: t("noData"), left: "center", top: "middle", textStyle: { color: "#8fa1bd", fontSize: 20 }
      };
    }
    return option;
  }

  function urgencyOption(rows) {
    var counts = {};
    rows.forEach(function (row) { counts[row.urgency] = row.count; });
    var data = URGENCIES.filter(function (u) { return counts[u] > 0; }).map(function (u) {
      return { name: t(u), value: counts[u], itemStyle: { color: URGENCY_COLOURS[u] } };
    });
    var option = base();
    option.tooltip.trigger = "item";
    option.series = [{ // no legend: each slice's label names it (the room goes to the ring on small screens)
      type: "pie",
      radius: ["40%", "70%"],
      showEmptyCircle: false, // "no data" says it; a grey ring would look like a chart
      center: ["50%", "50%"],
      label: { color: "#e6edf7", fontSize: 18, formatter: "{b}\n{c}" },
      itemStyle: { borderColor: "#131d31", borderWidth: 2 },
      data: data
    }];
    return empty(option, data.length > 0);
  }

  function districtOption(rows) {
    var sorted = rows.slice().sort(function (a, b) { return a.count - b.count; }); // largest on top
    var option = base();
    option.tooltip.trigger = "axis";
    option.tooltip.axisPointer = { type: "shadow" };
    option.legend = { top: 0, right: 0, textStyle: { color: "#e6edf7", fontSize: 16 } };
    option.grid = { left: 8, right: 24, top: 32, bottom: 8, containLabel: true };
    option.xAxis = Object.assign({ type: "value", minInterval: 1, axisLabel: { color: "#8fa1bd" } }, AXIS);
    option.yAxis = {
      type: "category",
      data: sorted.map(function (row) { return row.district.name; }),
      axisLabel: { color: "#e6edf7", fontSize: 16 },
      axisLine: AXIS.axisLine
    };
    option.series = [
      {
        name: t("critical"), type: "bar", stack: "open", barMaxWidth: 48,
        itemStyle: { color: URGENCY_COLOURS.CRITICAL },
        data: sorted.map(function (row) { return row.critical; })
      },
      {
        name: t("other"), type: "bar", stack: "open", barMaxWidth: 48, itemStyle: { color: "#3ba7ff" },
        label: { show: true, position: "right", color: "#e6edf7", fontSize: 16,
          formatter: function (p) { return sorted[p.dataIndex].count; } },
        data: sorted.map(function (row) { return row.count - row.critical; })
      }
    ];
    return empty(option, sorted.some(function (row) { return row.count > 0; }));
  }

  function modesOption(rows) {
    var counts = {};
    rows.forEach(function (row) { counts[row.mode] = row.count; });
    var option = base();
    option.tooltip.trigger = "axis";
    option.grid = { left: 8, right: 16, top: 28, bottom: 8, containLabel: true };
    option.xAxis = { type: "category", data: MODES.map(t), axisLabel: { color: "#e6edf7", fontSize: 18 },
      axisLine: AXIS.axisLine };
    option.yAxis = Object.assign({ type: "value", minInterval: 1, axisLabel: { color: "#8fa1bd" } }, AXIS);
    option.series = [{
      type: "bar",
      barMaxWidth: 80,
      label: { show: true, position: "top", color: "#e6edf7", fontSize: 18 },
      data: MODES.map(function (m) { return { value: counts[m] || 0, itemStyle: { color: MODE_COLOURS[m] } }; })
    }];
    return empty(option, MODES.some(function (m) { return counts[m] > 0; }));
  }

  function mapOption(rows) {
    // No map tiles (nothing may come from the internet): communities on longitude/latitude axes.
    var placed = rows.filter(function (row) { return row.latitude !== null && row.longitude !== null; });
    var largest = placed.reduce(function (max, row) { return Math.max(max, row.count); }, 1);
    var point = function (row) {
      return { name: row.community.name, value: [row.longitude, row.latitude, row.count, row.critical] };
    };
    var size = function (value) { return 12 + 48 * Math.sqrt(value[2] / largest); }; // area ∝ open count
    var option = base();
    option.tooltip.trigger = "item";
    option.tooltip.formatter = function (p) {
      return p.name + "\n" + t("openCount", { count: p.value[2] }) +
        (p.value[3] ? "\n" + t("criticalCount", { count: p.value[3] }) : "");
    };
    option.legend = { top: 0, right: 0, textStyle: { color: "#e6edf7", fontSize: 16 } };
    option.grid = { left: 8, right: 24, top: 32, bottom: 8, containLabel: true };
    // Room around the outermost points, so their bubbles are not cut off at the edges.
    option.xAxis = Object.assign({ type: "value", scale: true, boundaryGap: ["12%", "12%"],
      axisLabel: { color: "#8fa1bd" } }, AXIS);
    option.yAxis = Object.assign({ type: "value", scale: true, boundaryGap: ["12%", "12%"],
      axisLabel: { color: "#8fa1bd" } }, AXIS);
    var series = function (name, rowsOf, colour) {
      return {
        name: name, type: "scatter", symbolSize: size,
        itemStyle: { color: colour, opacity: 0.8, borderColor: "#e6edf7", borderWidth: 1 },
        data: rowsOf.map(point)
      };
    };
    option.series = [
      series(t("critical"), placed.filter(function (row) { return row.critical > 0; }), URGENCY_COLOURS.CRITICAL),
      series(t("other"), placed.filter(function (row) { return row.critical === 0; }), "#3ba7ff")
    ];
    var missing = rows.length - placed.length;
    $("map-note").hidden = missing === 0;
    $("map-note").textContent = missing ? t("noCoordinates", { count: missing }) : "";
    return empty(option, placed.length > 0);
  }

  function formatNumber(value) {
    var number = Number(value);
    if (!isFinite(number)) return String(value);
    return number.toLocaleString(state.lang === "zh" ? "zh-CN" : "en");
  }

  function render(situation) {
    show("board");
    $("open-count").textContent = formatNumber(situation.openRequests);
    $("overdue-count").textContent = formatNumber(situation.overdueRequests);
    $("tile-overdue").classList.toggle("alert", situation.overdueRequests > 0);
    var items = (situation.figures || []).filter(function (f) { return f.key === "items_distributed_today"; })[0];
    $("tile-items").hidden = !items; // the supplies plugin is off for this organisation
    if (items) $("items-count").textContent = formatNumber(items.value);

    var options = {
      urgency: urgencyOption(situation.openRequestsByUrgency || []),
      district: districtOption(situation.openRequestsByDistrict || []),
      modes: modesOption(situation.volunteersAvailableByMode || []),
      map: mapOption(situation.openRequestsByCommunity || [])
    };
    var drawn = Object.keys(options).map(function (name) {
      var target = chart(name);
      return new Promise(function (resolve) {
        var done = function () { target.off("finished", done); resolve(); };
        target.on("finished", done); // after the animation: what a screenshot sees is the final picture
        window.setTimeout(done, 3000); // a chart with nothing to animate may not say so
        target.setOption(options[name], { notMerge: true });
      });
    });
    var when = new Date(situation.asOf);
    $("updated").textContent = t("updated", {
      time: when.toLocaleTimeString(state.lang === "zh" ? "zh-CN" : "en", { hour12: false })
    });
    Promise.all(drawn).then(function () {
      if (state.situation === situation) document.body.dataset.rendered = "true";
    });
  }

  // -- start ----------------------------------------------------------------------------------------------

  function init() {
    $("lang").addEventListener("click", toggleLanguage);
    $("signout").addEventListener("click", signOut);
    $("signin-form").addEventListener("submit", signIn);
    window.addEventListener("resize", resizeCharts);
    applyLanguage();
    if (token()) start();
    else showSignIn(null);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
