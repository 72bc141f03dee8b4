// Buttons that cannot be undone ask first: a submit button with `data-confirm` sends its
// form only once the person says yes. Without scripts the form is sent as it is.
document.addEventListener("submit", (event) => {
  const asks = event.submitter?.dataset.confirm;
  if (asks && !confirm(asks)) event.preventDefault();
});
