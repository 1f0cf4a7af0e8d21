// Copy buttons for the snippets on the admin pages: <button class="copy" data-copy="<id>" hidden>.
// Shown only where the Clipboard API is available; the text stays selectable either way.
document.addEventListener('DOMContentLoaded', () => {
  if (!navigator.clipboard) return;
  for (const button of document.querySelectorAll('button.copy[data-copy]')) {
    const source = document.getElementById(button.getAttribute('data-copy'));
    if (!source) continue;
    const label = button.textContent;
    button.hidden = false;
    button.addEventListener('click', async () => {
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = 'Copied';
      } catch {
        button.textContent = 'Select and copy';
      }
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }
});
