"""Qt editors for declared options (AISegmentationLib's option declarations: a backend's or a classic tool's): one
editor per option, its value read back with the declaration's own parsing."""

from AISegmentationLib.Options import formatText, parseListText


def optionEditor(option, value, onChanged):
    """(kind, editor) for a declared option (Options.py): a list of several choices (choices, multiple), a combo box
    (choices), check box (bool), spin box (a number with a default) or line edit; onChanged is called on every edit."""
    import qt

    if option.choices and option.multiple:  # several of a list (e.g. MOOSE models): a list with several selected
        kind, editor = "choices", qt.QListWidget()
        editor.selectionMode = qt.QAbstractItemView.MultiSelection
        chosen = {str(item) for item in (value if isinstance(value, (list, tuple)) else [value]) if item is not None}
        for choice in option.choices:
            editor.addItem(str(choice))
            editor.item(editor.count - 1).setSelected(str(choice) in chosen)
        editor.setMaximumHeight(6 * editor.sizeHintForRow(0) + 4)
        editor.connect("itemSelectionChanged()", onChanged)
    elif option.choices:
        kind, editor = "choice", qt.QComboBox()
        editor.addItems([str(choice) for choice in option.choices])
        editor.currentText = str(value)
        editor.connect("currentTextChanged(QString)", onChanged)
    elif option.type == "bool" and not option.multiple:
        kind, editor = "bool", qt.QCheckBox()
        editor.checked = bool(value)
        editor.connect("toggled(bool)", onChanged)
    elif option.type in ("int", "float") and value is not None and not option.multiple and not option.keywords:
        kind, editor = "number", qt.QSpinBox() if option.type == "int" else qt.QDoubleSpinBox()
        if option.type == "float":
            editor.decimals = 3
            editor.singleStep = 0.05
        editor.minimum = option.minimum if option.minimum is not None else -1e9
        editor.maximum = option.maximum if option.maximum is not None else 1e9
        editor.value = value
        editor.suffix = f" {option.unit}" if option.unit else ""
        editor.connect("valueChanged(double)" if option.type == "float" else "valueChanged(int)", onChanged)
    else:
        kind, editor = "text", qt.QLineEdit(formatText(option, value))
        if option.secret:
            editor.echoMode = qt.QLineEdit.Password
        editor.connect("textChanged(QString)", onChanged)
    editor.toolTip = option.help + (f" ({option.unit})" if option.unit else "")
    return kind, editor


def optionValue(option, kind, editor):
    if kind == "choices":  # in the list's order
        selected = {item.text() for item in editor.selectedItems()}
        return [choice for choice in option.choices if str(choice) in selected]
    if kind == "choice":
        return next(choice for choice in option.choices if str(choice) == editor.currentText)
    if kind == "bool":
        return bool(editor.checked)
    if kind == "number":
        return editor.value
    return parseListText(option, editor.text)  # ValueError naming the option when the text is not valid
