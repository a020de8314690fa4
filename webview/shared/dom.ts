/** Attributes the views set on the elements they make. */
export interface Props {
  readonly className?: string;
  readonly href?: string;
  readonly title?: string;
  readonly role?: string;
  readonly ariaLabel?: string;
  readonly dataset?: Readonly<Record<string, string>>;
}

/** An element with its attributes (or just a class name) and children, as the views build their DOM. */
export function element<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props | string = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  const { className, href, title, role, ariaLabel, dataset } = typeof props === 'string' ? { className: props } : props;
  if (className) node.className = className;
  if (href) node.setAttribute('href', href);
  if (title) node.title = title;
  if (role) node.setAttribute('role', role);
  if (ariaLabel) node.setAttribute('aria-label', ariaLabel);
  for (const [key, value] of Object.entries(dataset ?? {})) node.dataset[key] = value;
  node.append(...children);
  return node;
}
