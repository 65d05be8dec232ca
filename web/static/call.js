// The call page's track switch: the same moment of another track of the recording.
const audio = document.getElementById("call-audio");
document.querySelectorAll("input[name=call-track]").forEach((input) => {
  input.addEventListener("change", () => {
    const at = audio.currentTime;
    const playing = !audio.paused;
    audio.src = input.value;
    audio.addEventListener("loadedmetadata", () => {
      audio.currentTime = at;
      if (playing) audio.play().catch(() => {});
    }, { once: true });
  });
});
