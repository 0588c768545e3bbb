// The console's charts, drawn with the vendored uPlot (static/vendor/, MIT): days on a time axis,
// and groups (deployments, keys) as bars on an axis of names. Each chart is redrawn whole when its
// data changes, and follows its container's width.
const HEIGHT = 220;
const DAY = 86400;
export const COLORS = { blue: "#2563eb", red: "#dc2626", amber: "#d97706", green: "#059669", violet: "#7c3aed" };

const charts = new Map(); // container id -> uPlot
const resizing = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const chart = charts.get(entry.target.id);
    if (chart && entry.contentRect.width > 0) chart.setSize({ width: entry.contentRect.width, height: HEIGHT });
  }
});

function draw(container, options, data) {
  clear(container);
  const chart = new uPlot({ width: container.clientWidth || 480, height: HEIGHT, ...options }, data, container);
  charts.set(container.id, chart);
  resizing.observe(container);
  return chart;
}

export function clear(container) {
  charts.get(container.id)?.destroy();
  charts.delete(container.id);
  resizing.unobserve(container);
  container.replaceChildren();
}

export function clearAll() {
  for (const id of [...charts.keys()]) clear(document.getElementById(id));
}

const bars = () => uPlot.paths.bars({ size: [0.6, 48], gap: 2 });

function axis(format) {
  return {
    stroke: "#6b7280",
    grid: { stroke: "#e5e7eb", width: 1 },
    ticks: { show: false },
    size: 64,
    values: (_, splits) => splits.map(format),
  };
}

function series(label, color, format, kind) {
  const line = { label, stroke: color, width: 2, value: (_, value) => (value == null ? "–" : format(value)) };
  if (kind === "bars") return { ...line, fill: `${color}cc`, width: 0, paths: bars(), points: { show: false } };
  return { ...line, fill: `${color}1a`, points: { size: 5, fill: color } };
}

// ``days``: UTC midnights in seconds; each of ``lines``: {label, color, values, kind: "bars"|"line"}.
export function dayChart(container, days, lines, format) {
  return draw(
    container,
    {
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      scales: { x: { time: true, range: (_, min, max) => [min - DAY / 2, max + DAY / 2] }, y: { range: (_, __, max) => [0, niceMax(max)] } },
      axes: [{ stroke: "#6b7280", grid: { show: false }, ticks: { show: false } }, axis(format)],
      series: [{ label: "Day", value: (_, seconds) => (seconds == null ? "–" : new Date(seconds * 1000).toISOString().slice(0, 10)) }, ...lines.map((line) => series(line.label, line.color, format, line.kind))],
      cursor: { points: { size: 7 } },
    },
    [days, ...lines.map((line) => line.values)],
  );
}

// One bar per name, of one measure.
export function groupChart(container, names, values, label, color, format) {
  const positions = names.map((_, index) => index);
  return draw(
    container,
    {
      scales: { x: { time: false, range: () => [-0.5, Math.max(names.length, 1) - 0.5] }, y: { range: (_, __, max) => [0, niceMax(max)] } },
      axes: [
        { stroke: "#374151", grid: { show: false }, ticks: { show: false }, splits: () => positions, values: (_, splits) => splits.map((at) => shorten(names[at] ?? "")) },
        axis(format),
      ],
      series: [{}, series(label, color, format, "bars")],
      legend: { show: false }, // the table below gives every bar's figures
      cursor: { points: { show: false } },
    },
    [positions, values],
  );
}

function niceMax(max) {
  if (!max || max <= 0) return 1;
  const step = 10 ** Math.floor(Math.log10(max));
  return Math.ceil((max * 1.1) / step) * step;
}

function shorten(name) {
  return name.length > 16 ? `${name.slice(0, 15)}…` : name;
}

// Every UTC day from ``since`` to ``until`` (seconds), with ``rows``' values on the days they have.
export function everyDay(since, until, rows) {
  const first = Math.floor(since / DAY) * DAY;
  const days = [];
  for (let day = first; day <= until; day += DAY) days.push(day);
  const byDay = new Map(rows.map((row) => [row.group, row]));
  return { days, rows: days.map((day) => byDay.get(new Date(day * 1000).toISOString().slice(0, 10))) };
}
