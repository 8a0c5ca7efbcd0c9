// Draws every plotly figure on the page: <div data-figure="ID"> plus {{ figure|json_script:ID }}.
document.querySelectorAll("[data-figure]").forEach(function (el) {
  var fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
  Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false});
});
