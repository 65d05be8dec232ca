// The calls list: "select all on this page" and the count of ticked calls for the batch form.
const all = document.getElementById("select-page");
const picks = () => [...document.querySelectorAll("input.pick")];
const count = document.getElementById("picked");

function update() {
  const ticked = picks().filter((p) => p.checked).length;
  if (count) count.textContent = String(ticked);
  if (all) {
    all.checked = ticked > 0 && ticked === picks().length;
    all.indeterminate = ticked > 0 && ticked < picks().length;
  }
  if (ticked) {
    const selected = document.querySelector('#batch-form input[name="scope"][value="selected"]');
    if (selected) selected.checked = true;
  }
}

if (all) {
  all.addEventListener("change", () => {
    for (const p of picks()) p.checked = all.checked;
    update();
  });
}
for (const p of picks()) p.addEventListener("change", update);
update();
