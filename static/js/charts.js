// Draws every plotly figure on the page: <div data-figure="ID"> plus {{ figure|json_script:ID }}.
// Loaded with defer; the drawing waits for the next frame so the tables and headings paint first,
// and each chart is its own task so the page stays responsive while they are drawn.
function drawFigures() {
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    setTimeout(function () {
      var fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
      Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false});
    }, 0);
  });
}
requestAnimationFrame(function () { setTimeout(drawFigures, 0); });
